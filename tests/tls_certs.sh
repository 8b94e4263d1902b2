#!/bin/sh
# Makes the certificates of the TLS tests in DIR, with the openssl
# command and EC P-256 keys:
#   ca.pem, ca.key              a test CA
#   other-ca.pem, other-ca.key  an unrelated CA
#   server.pem, server.key      signed by the CA: CN=localhost, SAN
#                               DNS:localhost, IP:127.0.0.1, IP:::1
#   server2.pem, server2.key    the same names, CN=localhost-2, another
#                               serial (a replacement for server.pem)
#   wronghost.pem, .key         signed by the CA, SAN DNS:other.example
#   expired.pem, .key           signed by the CA, valid in 2020 only
#   client.pem, client.key      signed by the CA, CN=alice, clientAuth
#   badclient.pem, .key         signed by other-ca, CN=mallory, clientAuth
# usage: tls_certs.sh DIR
set -eu

if [ $# -ne 1 ]; then
	echo "usage: $0 DIR" >&2
	exit 2
fi
if ! command -v openssl >/dev/null 2>&1; then
	echo "tls_certs.sh: the openssl command is missing (Debian: apt-get install openssl)" >&2
	exit 1
fi
dir=$1
mkdir -p "$dir"
cd "$dir"

serial=1000

key() {
	openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 \
		-out "$1.key" 2>/dev/null
}

# ca NAME CN
ca() {
	key "$1"
	openssl req -x509 -new -key "$1.key" -out "$1.pem" -days 3650 \
		-subj "/CN=$2" \
		-addext "basicConstraints=critical,CA:TRUE" \
		-addext "keyUsage=critical,keyCertSign,cRLSign"
}

# leaf NAME CA CN EXTENSIONS: a key and a certificate signed by CA.
leaf() {
	key "$1"
	openssl req -new -key "$1.key" -subj "/CN=$3" -out "$1.csr"
	printf '%s\n' "$4" >"$1.ext"
	serial=$((serial + 1))
	openssl x509 -req -in "$1.csr" -CA "$2.pem" -CAkey "$2.key" \
		-set_serial "$serial" -days 3650 -extfile "$1.ext" \
		-out "$1.pem" 2>/dev/null
	rm -f "$1.csr" "$1.ext"
}

server_ext='subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1
extendedKeyUsage=serverAuth
basicConstraints=CA:FALSE'
client_ext='extendedKeyUsage=clientAuth
basicConstraints=CA:FALSE'

ca ca "tcpchat test CA"
ca other-ca "tcpchat other CA"
leaf server ca localhost "$server_ext"
leaf server2 ca localhost-2 "$server_ext"
leaf wronghost ca other.example 'subjectAltName=DNS:other.example
extendedKeyUsage=serverAuth
basicConstraints=CA:FALSE'
leaf client ca alice "$client_ext"
leaf badclient other-ca mallory "$client_ext"

# expired: OpenSSL 3.0's x509 -req has no fixed start date, openssl ca
# has (-startdate/-enddate), with a throwaway database.
key expired
openssl req -new -key expired.key -subj "/CN=localhost" -out expired.csr
mkdir -p expired.db
: >expired.db/index.txt
echo 2000 >expired.db/serial
cat >expired.db/ca.cnf <<EOF
[ca]
default_ca = test
[test]
database = expired.db/index.txt
serial = expired.db/serial
new_certs_dir = expired.db
default_md = sha256
policy = anything
unique_subject = no
copy_extensions = none
[anything]
commonName = supplied
[ext]
subjectAltName = DNS:localhost,IP:127.0.0.1,IP:::1
extendedKeyUsage = serverAuth
basicConstraints = CA:FALSE
EOF
openssl ca -batch -config expired.db/ca.cnf -cert ca.pem -keyfile ca.key \
	-startdate 20200101000000Z -enddate 20201231000000Z -extensions ext \
	-notext -in expired.csr -out expired.pem 2>/dev/null
rm -rf expired.db expired.csr
if openssl x509 -in expired.pem -noout -checkend 0 >/dev/null; then
	echo "tls_certs.sh: expired.pem is not expired:" \
		"$(openssl x509 -in expired.pem -noout -enddate)" >&2
	exit 1
fi

for f in ca other-ca server server2 wronghost expired client badclient; do
	[ -s "$f.pem" ] && [ -s "$f.key" ] || {
		echo "tls_certs.sh: $dir/$f.pem or $f.key was not made" >&2
		exit 1
	}
done
