// Package cluster takes, lists, restores and moves snapshots of every node
// of a cluster at once.
//
// Each node runs an Agent: an HTTP API over that node's data dir (server.go
// routes and authenticates; api.go holds the wire types) that stops writes
// under a lease (leases.go), creates and deletes local snapshots
// (snapshots.go), runs long jobs (jobs.go: verify, restore, upload,
// download) and exports Prometheus metrics (metrics.go). Agents register in
// etcd, the agency (agency.go): membership under leases, the plan, and the
// mutex that lets one cluster backup run at a time.
//
// A Coordinator, run by the CLI wherever it is invoked, drives the agents
// of the plan: Create (create.go) locks every node at the same instant
// through quiesce.Acquire over an allNodes quiescer, creates the same id
// everywhere and checks the plan did not change; List and Delete (list.go);
// RunJobs (fanout.go); Restore (restore.go) proves every piece before any
// node changes and puts every node back if one fails. Errors cross the wire
// with their errs.Kind (errors.go). docs/DESIGN.md, Cluster, has the
// protocol; docs/cluster.md the API.
package cluster
