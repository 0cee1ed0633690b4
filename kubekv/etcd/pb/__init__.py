"""Generated protobuf/gRPC modules for etcd v3's API; do not edit (run `python -m kubekv.etcd.proto.generate`).

    etcd_kv_pb2         package mvccpb: KeyValue, Event
    etcd_rpc_pb2        package etcdserverpb: requests, responses, ResponseHeader, Member, AlarmType, ...
    etcd_rpc_pb2_grpc   stubs and servicers for KV, Watch, Lease, Cluster, Maintenance
"""
