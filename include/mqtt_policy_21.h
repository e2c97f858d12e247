/*
 * Mosquitto 2.1's plugin declarations, for build.rs to check the function-pointer types that
 * src/plugin/ffi.rs writes by hand for the functions 2.1 added (found at run time, so that one .so
 * serves 2.0 and 2.1). Only read when MOSQUITTO_21_INCLUDE_DIR points at 2.1's include/ folder.
 */
#ifndef MQTT_POLICY_21_H
#define MQTT_POLICY_21_H

#include <mosquitto/broker.h>
#include <mosquitto/broker_plugin.h>

#endif /* MQTT_POLICY_21_H */
