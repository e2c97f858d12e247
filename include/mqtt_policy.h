/*
 * The C declarations the mqtt-policy plugin is built against; build.rs runs bindgen over this file.
 *
 * Order matters: Mosquitto 2.0.11's mosquitto_plugin.h uses mosquitto_plugin_id_t without including
 * mosquitto_broker.h, where that type is declared (fixed upstream in 2.0.13). Including the three
 * headers in this order makes the set self-contained on every 2.0.x release.
 */
#ifndef MQTT_POLICY_H
#define MQTT_POLICY_H

#include <mosquitto.h>
#include <mosquitto_broker.h>
#include <mosquitto_plugin.h>

#endif /* MQTT_POLICY_H */
