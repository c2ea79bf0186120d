/**
 * What one DPoP proof costs in Chromium against its floor, one bare `crypto.subtle.sign` with the
 * same key: part of `npm run bench`, and on its own with `npx tsx bench/proof-cost.ts` (seconds,
 * not minutes; prints its row and does not touch bench/results.json).
 */
import { pathToFileURL } from "node:url";
import { type ProofCostResult, runProofBench } from "./browser.js";
import type { ProofCostOptions } from "./browser-entry.js";
import { count, formatTable, type Row, round } from "./report.js";

/** 50 proofs a round: each side takes some ms, well above the page timer's 0.1 ms steps. */
export const PROOF_PLAN: ProofCostOptions = { rounds: 200, proofsPerRound: 50 };

/** Proof / sign: what the library adds to the signature may cost a fifth of it. */
export const PROOF_GOAL = 1.2;

/** The table's row for the proof's cost in `browser`. */
export function proofRows(browser: string, proof: ProofCostResult): Row[] {
  const measure = `DPoP proof in ${browser}, no network: dpopProofs() proof / bare crypto.subtle.sign, same key`;
  const goal = `≤ ${PROOF_GOAL.toFixed(2)}`;
  if (proof.status !== "ran") {
    return [{ measure, value: `failed (${proof.reason})`, goal, ok: false }];
  }
  const microseconds = (opsPerSec: number) => count(1e6 / opsPerSec);
  return [
    {
      measure,
      value: `${proof.ratio.toFixed(3)} [${proof.ratioLow.toFixed(3)}–${proof.ratioHigh.toFixed(3)}] (${microseconds(proof.candidateOpsPerSec)} vs ${microseconds(proof.baselineOpsPerSec)} µs each)`,
      goal,
      ok: proof.ratio <= PROOF_GOAL,
    },
  ];
}

/** The proof's cost in bench/results.json. */
export function proofJson(proof: ProofCostResult) {
  if (proof.status !== "ran") return { status: proof.status, reason: proof.reason };
  return {
    status: proof.status,
    ratio: round(proof.ratio, 3),
    ratioCi95: [round(proof.ratioLow, 3), round(proof.ratioHigh, 3)],
    signMicroseconds: round(1e6 / proof.baselineOpsPerSec, 1),
    proofMicroseconds: round(1e6 / proof.candidateOpsPerSec, 1),
    rounds: proof.rounds,
    proofsPerRound: proof.callsPerRound,
    goal: PROOF_GOAL,
    ok: proof.ratio <= PROOF_GOAL,
  };
}

async function main(): Promise<void> {
  const result = await runProofBench(PROOF_PLAN);
  if (result.status !== "ran") {
    process.stdout.write(`proof cost: ${result.status} (${result.reason})\n`);
    process.exitCode = 1;
    return;
  }
  process.stdout.write(`${formatTable(proofRows(result.browser, result.proof))}\n`);
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) await main();
