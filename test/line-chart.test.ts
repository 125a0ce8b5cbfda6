// The SVG line charts behind lib/plot.ts: data mapped through the axes' scales to the exact
// coordinates, gaps for missing values, nice axis ranges, escaped text.
import t from 'tap';
import { lineChartSvg } from '../lib/line-chart';

const paths = (svg: string): string[] => [...svg.matchAll(/<path d="([^"]*)"/g)].map((m) => m[1]);

t.test('points land where the scales put them', async (t) => {
  const { svg, width, height } = lineChartSvg([
    {
      title: 't',
      xTitle: 'x',
      yTitle: 'y',
      xDomain: [0, 1],
      yDomain: [0, 1],
      width: 400,
      height: 200,
      series: [
        {
          name: 'a',
          points: [
            [0, 0],
            [0.5, 0.25],
            [1, 1],
          ],
        },
      ],
    },
  ]);
  // 62 + 400 + 16 wide, 34 + 200 + 46 high: the margins around the plot area
  t.same([width, height], [478, 280]);
  t.match(svg, /^<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg" width="478" height="280"/);
  t.same(paths(svg), ['M0,200L200,150L400,0'], 'x 0..1 -> 0..400, y 0..1 -> 200..0');
  t.match(svg, '<g transform="translate(62,34)">');
});

t.test('a non-finite value leaves a gap; a second series gets the next colour', async (t) => {
  const { svg } = lineChartSvg([
    {
      title: 't',
      xTitle: 'x',
      yTitle: 'y',
      xDomain: [1, 5],
      yDomain: [0, 4],
      width: 400,
      height: 200,
      series: [
        {
          name: 'a',
          points: [
            [1, 1],
            [2, 2],
            [3, NaN],
            [4, 3],
            [5, 4],
          ],
        },
        {
          name: 'b',
          points: [
            [1, 0],
            [5, 0],
          ],
        },
      ],
    },
  ]);
  t.same(paths(svg), ['M0,150L100,100M300,50L400,0', 'M0,200L400,200']);
  t.match(svg, /stroke="#4c78a8"[^]*stroke="#f58518"/);
  t.equal((svg.match(/<circle /g) ?? []).length, 4 + 2, 'one marker per finite point');
});

t.test('without a fixed domain the axis is the data range made nice; ticks are labelled', async (t) => {
  const { svg } = lineChartSvg([
    {
      title: 't',
      xTitle: 'epoch',
      yTitle: 'loss',
      xIntegers: true,
      series: [
        {
          name: 'a',
          points: [
            [1, 0.73],
            [2, 0.52],
            [3, 0.31],
          ],
        },
      ],
    },
  ]);
  const yLabels = [...svg.matchAll(/text-anchor="end" font-size="10"[^>]*>([^<]*)</g)].map((m) => m[1]);
  t.same(yLabels, ['0.3', '0.4', '0.5', '0.6', '0.7', '0.8'], 'y: 0.31..0.73 made nice to 0.3..0.8');
  const xLabels = [...svg.matchAll(/text-anchor="middle" font-size="10"[^>]*>([^<]*)</g)].map((m) => m[1]);
  t.same(xLabels, ['1', '2', '3'], 'x: whole epochs only');
});

t.test('text is escaped', async (t) => {
  const { svg } = lineChartSvg([{ title: 'a < b & "c"', xTitle: 'x', yTitle: 'y', series: [{ name: '<s>', points: [[0, 1]] }] }]);
  t.match(svg, 'a &lt; b &amp; &quot;c&quot;');
  t.match(svg, '&lt;s&gt;');
  t.notMatch(svg, '<s>');
});
