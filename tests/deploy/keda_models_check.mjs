// Checks KEDA objects with the npm package @kubernetes-models/keda (installed
// by scripts/setup-deploy.sh): required fields, types (trigger metadata values
// are strings, a ScaledJob's pod template is a core/v1 PodTemplateSpec) and the
// few enums its models carry. Its models follow KEDA 2.19's Go types without
// their validation markers, and they let unknown fields through: the
// per-release rules are tests/deploy/keda_facts.py's.
//
//     node keda_models_check.mjs <node_modules dir> <objects.json>...
//
// Each objects file is a JSON list. Prints "<file name> <Kind> <name>: <error>"
// per error and exits 1 when there is any.
import { readFileSync } from "node:fs";
import { basename, join } from "node:path";
import { pathToFileURL } from "node:url";

const [modules, ...files] = process.argv.slice(2);
const models = {};
for (const kind of ["ScaledJob", "ScaledObject", "TriggerAuthentication"]) {
  const file = join(modules, "@kubernetes-models/keda/keda.sh/v1alpha1", `${kind}.js`);
  models[kind] = (await import(pathToFileURL(file)))[kind];
}

const failures = [];
for (const file of files) {
  for (const object of JSON.parse(readFileSync(file, "utf8"))) {
    const where = `${basename(file)} ${object.kind} ${object.metadata?.name}`;
    const Model = models[object.kind];
    if (!Model) {
      failures.push(`${where}: not a kind the chart creates`);
      continue;
    }
    try {
      new Model(object).validate();
    } catch (error) {
      // One line per error: the package joins them with ", ".
      for (const message of String(error.message).split(/, (?=data\/)/)) {
        failures.push(`${where}: ${message}`);
      }
    }
  }
}
for (const line of failures) console.log(line);
process.exit(failures.length ? 1 : 0);
