#!/usr/bin/env bash
# The course tutorial's certificate steps, word for word, made non-interactive: the same five openssl
# commands, with the tutorial's example answers given on the command line (-subj) instead of typed, and
# its example passphrase "mqtt" for the CA key (-passout/-passin) instead of asked for. Nothing is made
# "more carefully" than a student makes it, so the results are what the tutorial really produces:
#   ca.key, ca.crt      the CA (X.509 version 3, as `openssl req -x509` makes it)
#   server.key          the server key (unencrypted)
#   server.csr, ca.srl  the request and the serial file
#   server.crt          X.509 *version 1*, no extensions, no subjectAltName, its CN the server's IP address,
#                       and (as the tutorial asks for "the same information") the same subject as the CA
#
# (The optional "challenge password" and "company name" the tutorial types into the request are left out:
# `openssl x509 -req` does not copy them into the certificate.)
#
# Usage: bash make-certs.sh DIR [IP]     (IP: the broker's address, default 127.0.0.1)
set -euo pipefail
dir=${1:?usage: $0 DIR [IP]}
ip=${2:-127.0.0.1}
mkdir -p "$dir"
cd "$dir"
# The tutorial's example answers: country, state, city, organization, unit, common name (the IP), e-mail.
subject="/C=CO/ST=Cundinamarca/L=Bogota/O=Uniandes/OU=MISO/CN=$ip/emailAddress=estudiante@uniandes.edu.co"

openssl genrsa -des3 -passout pass:mqtt -out ca.key 2048 2>/dev/null
openssl req -new -x509 -days 1826 -key ca.key -passin pass:mqtt -subj "$subject" -out ca.crt
openssl genrsa -out server.key 2048 2>/dev/null
openssl req -new -out server.csr -key server.key -subj "$subject"
openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -passin pass:mqtt -CAcreateserial -out server.crt -days 360 2>/dev/null
