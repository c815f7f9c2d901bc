//! Conformance of the test world: real kubectl, helm 4, helm 3 and kube-rs against the API
//! simulator over HTTPS, moto's EKS view of it, the binary, and process hygiene. Cases share
//! one world (in separate namespaces) unless they disturb it (closing watches, faults).

mod support;

pub mod cases {
    mod api;
    mod auth;
    mod clusters;
    pub mod eks;
    mod faults;
    mod helm;
    pub mod kaniko;
    mod kube_rs;
    mod kubectl;
    mod pods;
    mod rbac;
    mod validation;
    mod workloads;
    mod world;
}
