"""The etcd v3 wire definitions (.proto) and the script that regenerates kubekv.etcd.pb from them."""
