//! Workload controllers and write paths through kubectl: StatefulSet, DaemonSet and Job
//! status, CRDs that register new resources (KEDA's ScaledJob), server-side apply, and the
//! JSON, merge and strategic merge patch types.

use crate::support::{ok, world};

const WORKLOADS: &str = r#"
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: db}
spec:
  replicas: 2
  serviceName: db
  selector: {matchLabels: {app: db}}
  template:
    metadata: {labels: {app: db}}
    spec: {containers: [{name: db, image: registry.world/db:1}]}
---
{"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": "agent"}, "spec": {
  "selector": {"matchLabels": {"app": "agent"}},
  "template": {"metadata": {"labels": {"app": "agent"}}, "spec": {"containers": [{"name": "agent", "image": "registry.world/agent:1"}]}}}}
---
apiVersion: batch/v1
kind: Job
metadata: {name: once}
spec:
  template:
    spec:
      restartPolicy: Never
      containers: [{name: once, image: registry.world/once:1}]
---
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: scaledjobs.keda.sh}
spec:
  group: keda.sh
  scope: Namespaced
  names: {plural: scaledjobs, singular: scaledjob, kind: ScaledJob, listKind: ScaledJobList}
  versions:
    - name: v1alpha1
      served: true
      storage: true
      schema: {openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}}
"#;

const SCALED_JOB: &str = r#"
apiVersion: keda.sh/v1alpha1
kind: ScaledJob
metadata: {name: agents}
spec:
  jobTargetRef: {template: {spec: {containers: [{name: agent, image: registry.world/agent:1}]}}}
  triggers: [{type: azure-pipelines, metadata: {poolName: default}}]
"#;

#[test]
fn workload_controllers_crds_apply_and_patches() {
    let w = world();
    let kubectl = &w.tools().kubectl;
    let ns = w.unique_namespace("workloads").expect("namespace");
    let file = |name: &str, text: &str| {
        let path = w.dir().join(format!("{ns}-{name}.yaml"));
        std::fs::write(&path, text).expect("manifest");
        path.display().to_string()
    };
    ok(w, kubectl, &["apply", "-n", &ns, "-f", &file("workloads", WORKLOADS)]);
    ok(w, kubectl, &["rollout", "status", "statefulset/db", "-n", &ns, "--timeout=20s"]);
    ok(w, kubectl, &["rollout", "status", "daemonset/agent", "-n", &ns, "--timeout=20s"]);
    ok(w, kubectl, &["wait", "job/once", "-n", &ns, "--for=condition=complete", "--timeout=20s"]);
    assert_eq!(ok(w, kubectl, &["get", "pod", "db-1", "-n", &ns, "-o", "name"]).trim(), "pod/db-1");

    ok(w, kubectl, &["wait", "crd/scaledjobs.keda.sh", "--for=condition=established", "--timeout=20s"]);
    ok(w, kubectl, &["apply", "-n", &ns, "-f", &file("scaledjob", SCALED_JOB)]);
    let trigger = ok(w, kubectl, &["get", "scaledjob", "agents", "-n", &ns, "-o", "jsonpath={.spec.triggers[0].type}"]);
    assert_eq!(trigger, "azure-pipelines");

    let cm = file("cm", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: ssa}\ndata: {a: '1', b: '2'}\n");
    ok(w, kubectl, &["apply", "--server-side", "--field-manager=test", "-n", &ns, "-f", &cm]);
    let cm = file("cm2", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: ssa}\ndata: {a: '3'}\n");
    ok(w, kubectl, &["apply", "--server-side", "--field-manager=test", "-n", &ns, "-f", &cm]);
    assert_eq!(ok(w, kubectl, &["get", "cm", "ssa", "-n", &ns, "-o", "jsonpath={.data}"]), r#"{"a":"3"}"#);

    ok(
        w,
        kubectl,
        &["patch", "cm", "ssa", "-n", &ns, "--type=json", "-p", r#"[{"op":"add","path":"/data/j","value":"x"}]"#],
    );
    ok(w, kubectl, &["patch", "cm", "ssa", "-n", &ns, "--type=merge", "-p", r#"{"data":{"a":null}}"#]);
    assert_eq!(ok(w, kubectl, &["get", "cm", "ssa", "-n", &ns, "-o", "jsonpath={.data}"]), r#"{"j":"x"}"#);
    let patch = r#"{"spec":{"template":{"spec":{"containers":[{"name":"db","image":"registry.world/db:2"}]}}}}"#;
    ok(w, kubectl, &["patch", "statefulset", "db", "-n", &ns, "-p", patch]);
    ok(w, kubectl, &["rollout", "status", "statefulset/db", "-n", &ns, "--timeout=20s"]);
    let images = ok(
        w,
        kubectl,
        &["get", "pods", "-n", &ns, "-l", "app=db", "-o", "jsonpath={.items[*].spec.containers[0].image}"],
    );
    assert_eq!(images, "registry.world/db:2 registry.world/db:2");
}
