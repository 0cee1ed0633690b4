"""The linearizable, versioned key/value service on Raft (Go: kvraft1). See kvraft1/server.py and kvraft1/client.py."""
