package main

import (
	"github.com/urfave/cli/v2"

	"github.com/hotsnap/hotsnap/cluster"
)

// clusterFlags are the flags of the agent and of every cluster command:
// where etcd is and how to log in to it, and how agents and coordinators
// prove who they are (docs/cluster.md, Cluster security).
func clusterFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringSliceFlag{Name: "etcd", EnvVars: []string{"HOTSNAP_ETCD"}, Usage: "etcd endpoints (https://127.0.0.1:2379; comma-separated or repeated)"},
		&cli.StringFlag{Name: "cluster", EnvVars: []string{"HOTSNAP_CLUSTER"}, Usage: "cluster name (letters, digits, '.', '_', '-')"},
		&cli.StringFlag{Name: "etcd-cacert", EnvVars: []string{"HOTSNAP_ETCD_CACERT"}, Usage: "CA of etcd's certificate: talk to etcd over TLS only (https:// endpoints)"},
		&cli.StringFlag{Name: "etcd-cert", EnvVars: []string{"HOTSNAP_ETCD_CERT"}, Usage: "client certificate for etcd (its --client-cert-auth; with etcd's auth on and no --etcd-user, its common name is the etcd user)"},
		&cli.StringFlag{Name: "etcd-key", EnvVars: []string{"HOTSNAP_ETCD_KEY"}, Usage: "the key of --etcd-cert"},
		&cli.StringFlag{Name: "etcd-user", EnvVars: []string{"HOTSNAP_ETCD_USER"}, Usage: "etcd user (etcd's auth; needs --etcd-cacert)"},
		&cli.StringFlag{Name: "etcd-password-file", EnvVars: []string{"HOTSNAP_ETCD_PASSWORD_FILE"}, Usage: "file holding --etcd-user's password"},
		&cli.StringFlag{Name: "tls-ca", EnvVars: []string{"HOTSNAP_TLS_CA"}, Usage: "the cluster's CA (hotsnap cluster ca init): every agent proves its node id, every client its role, with a certificate of it"},
		&cli.StringFlag{Name: "tls-cert", EnvVars: []string{"HOTSNAP_TLS_CERT"}, Usage: "this process's certificate of the cluster CA (an agent's node certificate; a coordinator's operator or reader certificate)"},
		&cli.StringFlag{Name: "tls-key", EnvVars: []string{"HOTSNAP_TLS_KEY"}, Usage: "the key of --tls-cert"},
		&cli.StringFlag{Name: "token-file", EnvVars: []string{"HOTSNAP_TOKEN_FILE"}, Usage: "file holding a bearer token (token mode, for labs: agents without --tls-ca)"},
	}
}

// authFiles are the credential files the cluster flags name.
func authFiles(c *cli.Context) cluster.AuthFiles {
	return cluster.AuthFiles{CA: c.String("tls-ca"), Cert: c.String("tls-cert"), Key: c.String("tls-key"), TokenFile: c.String("token-file")}
}

// etcdFiles is how the cluster flags reach etcd.
func etcdFiles(c *cli.Context) cluster.EtcdFiles {
	return cluster.EtcdFiles{Endpoints: c.StringSlice("etcd"), Cluster: c.String("cluster"), CACert: c.String("etcd-cacert"),
		Cert: c.String("etcd-cert"), Key: c.String("etcd-key"), User: c.String("etcd-user"), PasswordFile: c.String("etcd-password-file")}
}
