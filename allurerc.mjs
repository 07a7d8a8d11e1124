// Allure 3 report of the suites (npm `allure`, pinned in package-lock.json; works offline).
// The history file carries past runs into the next report: trends across drills and quarters.

// Allure 3.18's quality gate calls Iterator.prototype.toArray, which Node has from version 22 on; on Node 20
// (shared/notes/ecosystem.md, finding 7) it is defined here as the language defines it.
const iteratorPrototype = Object.getPrototypeOf(Object.getPrototypeOf([][Symbol.iterator]()));
if (!iteratorPrototype.toArray) {
  Object.defineProperty(iteratorPrototype, "toArray", {
    value() {
      return [...this];
    },
    writable: true,
    configurable: true,
  });
}

// The label each drill writes (pytest_plugin/drill.py, AllureRecorder), as JSON: the drill's name and its
// measures, each in seconds at the run's time scale with its budget (scaled alike) and both in runbook
// minutes. Hidden from the test's page: the quality gate reads it.
export const BUDGETS_LABEL = "drill budgets";

const runbookMinutes = (minutes) => `${Number(minutes.toFixed(1))} runbook min`;

const reachedMeasures = (tr, name) => {
  const label = tr.labels.find((l) => l.name === BUDGETS_LABEL);
  if (!label) {
    return [];
  }
  const { drill, measures } = JSON.parse(label.value);
  return measures.filter((m) => m.name === name && m.seconds !== null).map((measure) => ({ tr, drill, measure }));
};

const overBudgetSentence = ({ drill, measure: m }) =>
  `${drill}: ${m.name} ${m.seconds.toFixed(2)} s (${runbookMinutes(m.minutes)}) exceeds its ` +
  `${m.budget_s.toFixed(2)} s budget (${runbookMinutes(m.budget_minutes)})`;

// A quality-gate rule per measure: `{ id: "TTR", budget: "time to rollback" }` fails when a drill's time to
// rollback reached its budget (measures.py: a measure is within its budget when it is under it; one never
// reached is neither within nor over), and its message names each drill over the budget, and the budget.
export const budgetRule = {
  rule: "budget",
  message: ({ actual }) => `${actual.over.join("; ")} (${actual.over.length} of ${actual.judged} drills over budget)`,
  successMessage: ({ expected, actual }) => `${actual.judged} drills, each ${expected} within its budget`,
  validate: async ({ trs, expected, state }) => {
    const previous = state.getResult() ?? { judged: 0, over: [] };
    const reached = trs.flatMap((tr) => reachedMeasures(tr, expected));
    const over = reached.filter(({ measure }) => measure.seconds >= measure.budget_s);
    const actual = { judged: previous.judged + reached.length, over: [...previous.over, ...over.map(overBudgetSentence)] };
    const testResults = over.map(({ tr }) => tr.id);
    state.setResult(actual, testResults);
    return { success: actual.over.length === 0, actual, testResults };
  },
};

export default {
  name: "BooksTrack rollback suite",
  output: "./reports/allure-report",
  historyPath: "./reports/history/allure-history.jsonl",
  historyLimit: 40,
  hideLabels: [BUDGETS_LABEL],
  categories: [
    { name: "Threshold breach (the service fails a runbook threshold)", matchers: { statuses: ["failed"], message: "[\\s\\S]*FAIL: [\\s\\S]*" } },
    { name: "Budget exceeded (a drill phase was too slow)", matchers: { statuses: ["failed"], message: "[\\s\\S]*exceeded its budget[\\s\\S]*" } },
    { name: "Inconclusive (not enough evidence yet)", matchers: { statuses: ["broken", "failed"], message: "[\\s\\S]*INCONCLUSIVE: [\\s\\S]*" } },
    { name: "Checker error (the suite could not measure)", matchers: { statuses: ["broken", "failed"], message: "[\\s\\S]*ERROR: [\\s\\S]*" } },
    { name: "Staging left unhealed", matchers: { statuses: ["failed", "broken"], message: "[\\s\\S]*left unhealed[\\s\\S]*" } },
  ],
  performance: {
    groups: { drill: { title: "Drill measures (seconds at the run's time scale)" } },
    metrics: {
      time_to_detect_s: { title: "Time to detect", unit: "s", better: "lower", group: "drill" },
      time_to_rollback_s: { title: "Time to rollback", unit: "s", better: "lower", group: "drill" },
      total_recovery_s: { title: "Total recovery", unit: "s", better: "lower", group: "drill" },
    },
  },
  // The runbook's budgets (time to detect < 5 min, time to rollback < 5, total < 10), each drill judged against
  // the budgets it recorded itself (scaled with the time scale). `allure run` judges them and keeps the result
  // in the report (make drill); `allure quality-gate reports/allure-results -c allurerc.mjs` only prints it.
  qualityGate: {
    rules: [
      { id: "TTD", budget: "time to detect" },
      { id: "TTR", budget: "time to rollback" },
      { id: "total", budget: "total recovery" },
    ],
    use: [budgetRule],
  },
  plugins: {
    awesome: { options: { reportName: "BooksTrack rollback suite", groupBy: ["epic", "feature", "story"] } },
  },
};
