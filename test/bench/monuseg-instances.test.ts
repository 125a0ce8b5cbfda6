// The MoNuSeg ground-truth rasteriser of bench/monuseg-instances.ts: Aperio XML regions parsed in order,
// and instance labels: a triangle and a pentagon with fractional vertices as skimage 0.26's
// draw.polygon paints them (golden values), and an integer-vertex square (MoNuSeg's vertices are
// integers) worked by hand: centres on its left and top edges in, on its right and bottom edges out.
import t from 'tap';
import { parseAperioRegions, rasterizeInstances } from '../../bench/monuseg-instances';

const POLYS = [
  [
    [1.2, 1.0],
    [8.7, 2.3],
    [4.1, 7.9],
  ],
  [
    [10.5, 3.2],
    [14.8, 3.9],
    [15.3, 9.6],
    [11.1, 10.4],
    [9.6, 6.5],
  ],
  [
    [5, 9],
    [9, 9],
    [9, 13],
    [5, 13],
  ],
];
const xml = `<Annotations MicronsPerPixel="0.25"><Annotation Id="1"><Regions>
<RegionAttributeHeaders><AttributeHeader Id="9999" Name="Region"/></RegionAttributeHeaders>
${POLYS.map((p, k) => `<Region Id="${k + 2}" Type="0" Area="1"><Attributes/><Vertices>\n${p.map(([x, y]) => `<Vertex X="${x}" Y="${y}"/>`).join('\n')}\n</Vertices></Region>`).join('\n')}
</Regions></Annotation></Annotations>`;

// regions 1, 2: skimage.draw.polygon(ys, xs, (16, 18)) painted with k + 1; region 3, the square (5..9) x (9..13):
// columns 5-8 of rows 9-12 (skimage would add column 9 and row 13)
const GOLDEN = [
  '000000000000000000',
  '000000000000000000',
  '001111100000000000',
  '000111111000000000',
  '000111110002222000',
  '000111100002222000',
  '000011000022222000',
  '000010000022222200',
  '000000000002222200',
  '000003333002222200',
  '000003333002220000',
  '000003333000000000',
  '000003333000000000',
  '000000000000000000',
  '000000000000000000',
  '000000000000000000',
];

t.test('regions parse in file order', async (t) => {
  const rings = parseAperioRegions(xml);
  t.same(
    rings,
    POLYS.map((p) => p.flat()),
  );
});

t.test('instance labels: centres inside, edges half-open', async (t) => {
  const labels = rasterizeInstances(parseAperioRegions(xml), 18, 16);
  const rows = Array.from({ length: 16 }, (_, y) => Array.from(labels.subarray(y * 18, y * 18 + 18)).join(''));
  t.same(rows, GOLDEN);
});
