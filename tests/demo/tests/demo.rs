//! The demo end to end: the example pipeline run by the `azp-kube-demo`
//! binary against the local world, a broken example, and the refusals of
//! unsupported YAML.
