//! Tests against the real Debian `mosquitto` binary: the harness (processes, certificates, configs,
//! clients) and the tests that use it.
