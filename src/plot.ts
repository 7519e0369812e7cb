/**
 * Charts as SVG files a user can open anywhere, drawn by Vega-Lite in Node (no browser, no canvas), and a one-line
 * terminal sparkline.
 */
import sparkly from 'sparkly';
import * as vega from 'vega';
import { compile, type TopLevelSpec } from 'vega-lite';

/** One point of a line: x, y, and the series (line) it belongs to; `panel` splits the chart into stacked charts. */
export interface Point {
  x: number;
  y: number;
  series: string;
  panel?: string;
}

/** Lines of y over x, one colour per series, one chart per panel (stacked, each with its own y scale). */
export async function lineChartSvg(points: Point[], opts: { title: string; x: string; y?: string }): Promise<string> {
  const layer = {
    mark: { type: 'line', point: true },
    encoding: {
      x: { field: 'x', type: 'quantitative', title: opts.x },
      y: { field: 'y', type: 'quantitative', title: opts.y ?? null, scale: { zero: false } },
      color: { field: 'series', type: 'nominal', title: null },
    },
  } as const;
  const spec = {
    title: opts.title,
    data: { values: points.map((p) => ({ ...p, panel: p.panel ?? '' })) },
    ...(points.some((p) => p.panel)
      ? { facet: { row: { field: 'panel', type: 'nominal', title: null } }, spec: { width: 480, height: 180, ...layer }, resolve: { scale: { y: 'independent' } } }
      : { width: 480, height: 260, ...layer }),
  } as TopLevelSpec;
  const view = new vega.View(vega.parse(compile(spec).spec), { renderer: 'none' });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

export function sparkline(values: number[]): string {
  return values.length ? sparkly(values) : '';
}
