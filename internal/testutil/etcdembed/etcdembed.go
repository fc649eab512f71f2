// Package etcdembed configures the single-member, loopback-only etcd
// (go.etcd.io/etcd/server/v3/embed) that the tests and scripts/etcd run.
package etcdembed

import (
	"fmt"
	"net/url"

	"go.etcd.io/etcd/server/v3/embed"
)

// Config is a single-member etcd on loopback ports with its data in dir,
// logging only fatal errors (the tests' and scripts/etcd's).
func Config(dir string, clientPort, peerPort int) *embed.Config {
	cfg := embed.NewConfig()
	cfg.Dir = dir
	cfg.Name = "hotsnap"
	cu, _ := url.Parse(fmt.Sprintf("http://127.0.0.1:%d", clientPort))
	pu, _ := url.Parse(fmt.Sprintf("http://127.0.0.1:%d", peerPort))
	cfg.ListenClientUrls, cfg.AdvertiseClientUrls = []url.URL{*cu}, []url.URL{*cu}
	cfg.ListenPeerUrls, cfg.AdvertisePeerUrls = []url.URL{*pu}, []url.URL{*pu}
	cfg.InitialCluster = cfg.InitialClusterFromName(cfg.Name)
	cfg.LogLevel = "fatal"
	return cfg
}
