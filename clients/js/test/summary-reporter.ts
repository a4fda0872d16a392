// Prints one plain closing line, "vitest: N passed, N failed", as the very
// last line of the run, where CI reads the result.
import type { Reporter, TestModule } from "vitest/node";

export default class SummaryReporter implements Reporter {
  onTestRunEnd(modules: ReadonlyArray<TestModule>) {
    const count = { passed: 0, failed: 0, skipped: 0, pending: 0 };
    for (const m of modules) for (const t of m.children.allTests()) count[t.result().state]++;
    const skipped = count.skipped + count.pending;
    const line = `vitest: ${count.passed} passed, ${count.failed} failed${skipped ? `, ${skipped} skipped` : ""}`;
    // After the default reporter's summary, which it prints later.
    process.once("exit", () => console.log(line));
  }
}
