// µm per pixel from what files state (Aperio description, OME-XML with units, TIFF resolution tags
// per cm or inch, OpenSlide properties), screen/print defaults refused; and an OME-TIFF whose
// pyramid lives in SubIFDs, written byte by byte here (sharp cannot write SubIFDs), read by openSlide.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import t from 'tap';
import {
  aperioResolution,
  objectivePower,
  omeResolution,
  openSlideResolution,
  parseAperioDescription,
  tiffTagResolution,
} from '../../lib/slide/mpp';
import { openSlide } from '../../lib/slide/open';
import { readTiffInfo } from '../../lib/slide/tiff';
import { sharpReadsSubifds } from '../../lib/slide/tiff-slide';
import { writeOmeSubifdTiff } from './fixtures/ome';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'patho-mpp-'));
t.teardown(() => fs.rmSync(tmp, { recursive: true, force: true }));

t.test('Aperio ImageDescription', async (t) => {
  const d =
    'Aperio Image Library v11.2.1 \r\n46000x32914 [42673,5576 2220x2967] (240x240) JPEG/RGB Q=30|AppMag = 20|MPP = 0.4990|Filename = CMU-1';
  const p = parseAperioDescription(d);
  t.same(p, { AppMag: '20', MPP: '0.4990', Filename: 'CMU-1' });
  t.same(aperioResolution(p), { mppX: 0.499, mppY: 0.499, source: 'Aperio MPP' });
  t.equal(objectivePower({ 'aperio.AppMag': '40' }), 40);
  t.equal(objectivePower({ 'openslide.objective-power': '20', 'aperio.AppMag': '40' }), 20);
  t.equal(objectivePower({}), null);
});

t.test('OME PhysicalSizeX/Y with units', async (t) => {
  t.same(
    omeResolution('<OME><Image><Pixels DimensionOrder="XYCZT" PhysicalSizeX="0.325" PhysicalSizeY="0.33" SizeX="10"/></Image></OME>'),
    { mppX: 0.325, mppY: 0.33, source: 'OME PhysicalSizeX/Y' },
  );
  const nm = omeResolution(
    '<ome:OME><ome:Image><ome:Pixels PhysicalSizeX="250" PhysicalSizeXUnit="nm" PhysicalSizeY="250" PhysicalSizeYUnit="nm"></ome:Pixels></ome:Image></ome:OME>',
  );
  t.ok(nm && Math.abs(nm.mppX - 0.25) < 1e-12, 'nanometres');
  t.equal(omeResolution('<OME><Pixels SizeX="10"/></OME>'), null, 'no physical size');
  t.equal(omeResolution('<OME><Pixels PhysicalSizeX="1" PhysicalSizeXUnit="parsec"/></OME>'), null, 'unknown unit');
});

t.test('TIFF resolution tags', async (t) => {
  t.same(tiffTagResolution(40000, 40000, 3), { mppX: 0.25, mppY: 0.25, source: 'TIFF XResolution (cm)' });
  const inch = tiffTagResolution(50800, 50800, 2);
  t.ok(inch && Math.abs(inch.mppX - 0.5) < 1e-12, '50800 px/inch = 0.5 um');
  t.equal(tiffTagResolution(72, 72, 2), null, '72 dpi is a screen default, not a microscope');
  t.equal(tiffTagResolution(40000, 40000, 1), null, 'no unit');
  t.same(openSlideResolution({ 'openslide.mpp-x': '0.2527', 'openslide.mpp-y': '0.2528' }), {
    mppX: 0.2527,
    mppY: 0.2528,
    source: 'openslide.mpp-x',
  });
});

t.test('an OME-TIFF with its pyramid in SubIFDs', async (t) => {
  const file = path.join(tmp, 'sub.ome.tif');
  const ome =
    '<?xml version="1.0"?><OME xmlns="http://www.openmicroscopy.org/Schemas/OME/2016-06"><Image ID="Image:0"><Pixels ID="Pixels:0" DimensionOrder="XYCZT" Type="uint8" SizeX="512" SizeY="384" SizeC="3" SizeZ="1" SizeT="1" PhysicalSizeX="0.5" PhysicalSizeXUnit="µm" PhysicalSizeY="0.5" PhysicalSizeYUnit="µm"/></Image></OME>';
  writeOmeSubifdTiff(
    file,
    [
      [512, 384],
      [256, 192],
      [128, 96],
    ],
    64,
    ome,
  );
  const info = readTiffInfo(file);
  t.equal(info.pages.length, 1);
  t.equal(info.pages[0].subifds.length, 2);
  using slide = await openSlide(file);
  t.equal(slide.vendor, 'ome-tiff');
  const levels = (await sharpReadsSubifds(file, info)) ? 3 : 1;
  if (levels === 1) t.comment('this sharp ignores its subifd option (fixed by lovell/sharp#4572): only the full-resolution level is used');
  t.same(
    slide.levels.map((l) => [l.width, l.height, l.downsample]),
    [
      [512, 384, 1],
      [256, 192, 2],
      [128, 96, 4],
    ].slice(0, levels),
  );
  t.equal(slide.mpp, 0.5);
  t.equal(slide.mppSource, 'OME PhysicalSizeX/Y');
  for (const level of [0, 1, 2].slice(0, levels)) {
    const r = await slide.readRegion({ level, x: 128, y: 64, width: 8, height: 2 });
    const lx = 128 / 2 ** level,
      ly = 64 / 2 ** level;
    t.same(
      [...r.data.subarray(0, 6)],
      [60 * level + 10, lx & 255, ly & 255, 60 * level + 10, (lx + 1) & 255, ly & 255],
      `level ${level} comes from its own SubIFD`,
    );
  }
});
