// The same report, quality gate included, as one self-contained index.html for attaching to a ticket
// (reads the history, does not append to it: allurerc.mjs does that once per run).
import base from "./allurerc.mjs";

export default {
  ...base,
  output: "./reports/allure-report-single",
  appendHistory: false,
  plugins: {
    awesome: { options: { ...base.plugins.awesome.options, singleFile: true } },
  },
};
