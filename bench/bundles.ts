/**
 * `npm run bench:bundles`: the bundle part of `npm run bench` alone, in seconds: the size of each
 * usage's app bundle and of the libraries beside it, and what each bundle is made of.
 */
import { bundleBreakdowns, bundleNote, bundleRows } from "./bundle-report.js";
import { measureAllBundles } from "./bundle-size.js";
import { formatTable } from "./report.js";

const bundles = await measureAllBundles();
process.stdout.write(
  [
    formatTable(bundleRows(bundles)),
    "",
    `- ${bundleNote(bundles)}`,
    "",
    "Minified bytes per file:",
    bundleBreakdowns(bundles),
    "",
  ].join("\n"),
);
