// Allure 3 report of the suites (npm `allure`, pinned in package-lock.json; works offline).
// The history file carries past runs into the next report: trends across drills and quarters.
export default {
  name: "BooksTrack rollback suite",
  output: "./reports/allure-report",
  historyPath: "./reports/history/allure-history.jsonl",
  historyLimit: 40,
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
  plugins: {
    awesome: { options: { reportName: "BooksTrack rollback suite", groupBy: ["epic", "feature", "story"] } },
  },
};
