"""The etcd v3 gRPC API on KubeKV, so that stock etcdctl (3.4/3.5) and etcd's client libraries can use the store.

    kubekv.etcd.proto   the .proto files (etcd's package, message and field names and numbers) and generate.py
    kubekv.etcd.pb      the Python code generated from them (checked in; regenerate with
                        `python -m kubekv.etcd.proto.generate`)

So far this package holds only the wire definitions; the server that answers these RPCs comes later.
"""
