/** The bench's table on stdout and its bench/results.json: one row per figure, goals beside them. */
import { cpus, loadavg } from "node:os";

/** One line of the table. `ok` is undefined for figures reported without a goal. */
export interface Row {
  measure: string;
  value: string;
  goal: string;
  ok: boolean | undefined;
}

/** The machine the figures come from. */
export interface Machine {
  node: string;
  platform: string;
  cpu: string;
  cores: number;
  /** 1, 5 and 15 minute load averages when the bench started and when it ended. */
  loadAverageStart: number[];
  loadAverageEnd: number[];
}

/** This machine, with the load average now as the start value. */
export function describeMachine(): Machine {
  const cores = cpus();
  return {
    node: process.version,
    platform: `${process.platform} ${process.arch}`,
    cpu: cores[0]?.model.trim() ?? "unknown",
    cores: cores.length,
    loadAverageStart: loadAverage(),
    loadAverageEnd: [],
  };
}

export function loadAverage(): number[] {
  return loadavg().map((value) => round(value, 2));
}

/** The machine in one line, for the table's header and the README. */
export function machineLine(machine: Machine): string {
  const load = (values: number[]) => values.join(" ");
  return (
    `Node ${machine.node}, ${machine.platform}, ${machine.cpu}, ${machine.cores} cores, ` +
    `load average ${load(machine.loadAverageStart)} at start, ${load(machine.loadAverageEnd)} at end`
  );
}

/** The rows as an aligned text table (also valid Markdown). */
export function formatTable(rows: readonly Row[]): string {
  const cells = rows.map((row) => [row.measure, row.value, row.goal, okText(row.ok)]);
  const header = ["measure", "value", "goal", "ok?"];
  const widths = header.map((title, i) =>
    Math.max(title.length, ...cells.map((line) => (line[i] ?? "").length)),
  );
  const line = (values: string[]) =>
    `| ${values.map((value, i) => value.padEnd(widths[i] ?? 0)).join(" | ")} |`;
  const rule = `|${widths.map((width) => "-".repeat(width + 2)).join("|")}|`;
  return [line(header), rule, ...cells.map(line)].join("\n");
}

function okText(ok: boolean | undefined): string {
  if (ok === undefined) return "";
  return ok ? "yes" : "NO";
}

/** `value` rounded to `digits` decimals. */
export function round(value: number, digits: number): number {
  const factor = 10 ** digits;
  return Math.round(value * factor) / factor;
}

/** A whole number with thousands separators: 12,345. */
export function count(value: number): string {
  return Math.round(value).toLocaleString("en-US");
}

/** Milliseconds with one decimal below 100 ms, whole above. */
export function ms(value: number): string {
  return `${value < 100 ? value.toFixed(1) : Math.round(value)} ms`;
}
