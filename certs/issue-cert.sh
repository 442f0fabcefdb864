#!/usr/bin/env bash
# Issues Corridor mTLS certificates in a real deployment, with the openssl CLI.
#
#   issue-cert.sh csr  KIND ID OUTDIR
#       run by the party that will hold the key: makes OUTDIR/tls.key (P-256, PKCS#8, 0600)
#       and OUTDIR/tls.csr. The key never leaves OUTDIR; send only the CSR.
#
#   issue-cert.sh sign KIND ID CSR CA_CERT CA_KEY OUT_CERT [DAYS]
#       run by the region's issuing CA: signs CSR for the identity KIND ID, which the CA
#       operator has confirmed out of band. Subject, SAN, key usage and EKU are rebuilt from
#       KIND and ID; nothing but the public key is taken from the CSR.
#
# KIND is member | agency | operator | hub. ID is a member id (IDN), an agency id
# (IDN:immigration, IOM:observer), an operator id (duty-officer), or for the hub the region
# name (e.g. sea-corridor). For the hub, HUB_HOSTS="hub.example.org,10.0.0.5" lists the DNS
# names and IP addresses clients dial; it must be set the same way for csr and sign.
#
# See certs/README.md.
set -euo pipefail

readonly DEFAULT_DAYS=90
readonly MAX_DAYS=397

WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

usage() {
  sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'
}

die() {
  echo "issue-cert.sh: $*" >&2
  exit 1
}

# Every value that ends up in an openssl config file is checked against the identity grammar
# first (src/core/ids.ts): a newline or '[' smuggled into an id must not become a directive.
check_identity() {
  local kind="$1" id="$2"
  case "$kind" in
    member) [[ "$id" =~ ^[A-Z]{3}$ ]] || die "member id '$id' must be three capital letters (ISO 3166-1 alpha-3)" ;;
    agency) [[ "$id" =~ ^[A-Z][A-Z0-9]{1,15}:[a-z0-9][a-z0-9-]{0,47}$ ]] || die "agency id '$id' must be OWNER:unit, e.g. IDN:immigration" ;;
    operator) [[ "$id" =~ ^[a-z0-9][a-z0-9.-]{0,63}$ ]] || die "operator id '$id' must be lower-case letters, digits, dots and dashes" ;;
    hub) [[ "$id" =~ ^[a-z0-9][a-z0-9.-]{0,63}$ ]] || die "region name '$id' must be lower-case letters, digits, dots and dashes" ;;
    *) die "KIND must be member, agency, operator or hub; got '$kind'" ;;
  esac
}

# Writes the [san] section for KIND ID: the identity URI, and for the hub its host names.
san_section() {
  local kind="$1" id="$2" dns=0 ip=0 host
  echo "[san]"
  echo "URI.1 = urn:corridor:${kind}:${id}"
  if [[ "$kind" == hub ]]; then
    [[ -n "${HUB_HOSTS:-}" ]] || die "a hub certificate needs HUB_HOSTS, e.g. HUB_HOSTS=hub.example.org,10.0.0.5"
    IFS=',' read -r -a hosts <<<"$HUB_HOSTS"
    for host in "${hosts[@]}"; do
      if [[ "$host" =~ ^[0-9]{1,3}(\.[0-9]{1,3}){3}$ || ( "$host" == *:* && "$host" =~ ^[0-9A-Fa-f:.]+$ ) ]]; then
        ip=$((ip + 1)); echo "IP.${ip} = ${host}"
      elif [[ "$host" =~ ^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$ ]]; then
        dns=$((dns + 1)); echo "DNS.${dns} = ${host}"
      else
        die "HUB_HOSTS entry '$host' is neither a DNS name nor an IP address"
      fi
    done
  fi
}

cmd_csr() {
  [[ $# -eq 3 ]] || die "usage: issue-cert.sh csr KIND ID OUTDIR"
  local kind="$1" id="$2" outdir="$3"
  check_identity "$kind" "$id"
  mkdir -p "$outdir"
  chmod 700 "$outdir"
  local key="$outdir/tls.key" csr="$outdir/tls.csr"
  # Never overwrite a key: it may already back a certificate in use.
  [[ ! -e "$key" ]] || die "$key already exists; move it away to make a new key"
  local config="$WORK/req.cnf"
  {
    echo "[req]"
    echo "distinguished_name = dn"
    echo "prompt = no"
    echo "req_extensions = ext"
    echo "[dn]"
    echo "CN = ${kind}:${id}"
    echo "O = Corridor"
    echo "[ext]"
    echo "subjectAltName = @san"
    san_section "$kind" "$id"
  } >"$config"
  # umask so the key file is 0600 from the moment it exists.
  (umask 077 && openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$key")
  openssl req -new -key "$key" -config "$config" -out "$csr"
  echo "wrote $key (keep it here, mode 0600) and $csr (send this to the region's CA)"
}

cmd_sign() {
  [[ $# -eq 6 || $# -eq 7 ]] || die "usage: issue-cert.sh sign KIND ID CSR CA_CERT CA_KEY OUT_CERT [DAYS]"
  local kind="$1" id="$2" csr="$3" ca_cert="$4" ca_key="$5" out="$6" days="${7:-$DEFAULT_DAYS}"
  check_identity "$kind" "$id"
  [[ "$days" =~ ^[0-9]{1,3}$ && "$days" -ge 1 && "$days" -le "$MAX_DAYS" ]] || die "DAYS must be 1 to $MAX_DAYS; got '$days'"
  local file
  for file in "$csr" "$ca_cert" "$ca_key"; do [[ -r "$file" ]] || die "cannot read $file"; done

  # The CSR's self-signature proves its sender holds the key; it proves nothing about identity.
  openssl req -in "$csr" -noout -verify 2>/dev/null || die "$csr: the CSR's signature does not verify"
  local text
  text="$(openssl req -in "$csr" -noout -text)"
  grep -q 'ASN1 OID: prime256v1' <<<"$text" || die "$csr: the key is not P-256 (prime256v1); Corridor TLS keys are P-256"
  # A CSR that asks for a different identity is a mistake or an attempt; either way, stop.
  local requested
  requested="$(grep -o 'URI:urn:corridor:[^,[:space:]]*' <<<"$text" || true)"
  if [[ -n "$requested" && "$requested" != "URI:urn:corridor:${kind}:${id}" ]]; then
    die "$csr asks for ${requested//$'\n'/ } but you are signing urn:corridor:${kind}:${id}; check who sent it"
  fi

  local eku=clientAuth
  if [[ "$kind" == hub ]]; then eku="serverAuth, clientAuth"; fi
  local config="$WORK/leaf.cnf"
  {
    echo "[leaf]"
    echo "basicConstraints = critical, CA:FALSE"
    echo "keyUsage = critical, digitalSignature"
    echo "extendedKeyUsage = ${eku}"
    echo "subjectKeyIdentifier = hash"
    echo "authorityKeyIdentifier = keyid"
    echo "subjectAltName = @san"
    san_section "$kind" "$id"
  } >"$config"

  # 16 random bytes, first byte 0x01..0x7f: a positive serial with no leading zero byte.
  local serial
  serial="$(openssl rand -hex 16)"
  serial="$(printf '%02x' $(( (16#${serial:0:2} & 0x7f) | 0x01 )))${serial:2}"

  openssl x509 -req -in "$csr" -CA "$ca_cert" -CAkey "$ca_key" -set_serial "0x${serial}" \
    -days "$days" -sha256 -subj "/CN=${kind}:${id}/O=Corridor" -clrext \
    -extfile "$config" -extensions leaf -out "$out" 2>"$WORK/openssl.err" \
    || die "openssl could not sign $csr (is $ca_key the key of $ca_cert?): $(cat "$WORK/openssl.err")"
  # -partial_chain: CA_CERT is usually an issuing CA below an offline root, not self-signed.
  openssl verify -partial_chain -CAfile "$ca_cert" "$out" >/dev/null || die "$out does not verify against $ca_cert"
  echo "wrote $out: urn:corridor:${kind}:${id}, serial ${serial}, ${days} days"
}

main() {
  [[ $# -ge 1 ]] || { usage >&2; exit 2; }
  case "$1" in
    -h | --help | help) usage ;;
    csr) shift; cmd_csr "$@" ;;
    sign) shift; cmd_sign "$@" ;;
    *) usage >&2; exit 2 ;;
  esac
}

main "$@"
