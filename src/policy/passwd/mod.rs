//! Mosquitto's `password_file`: grammar, hash formats and verification.
