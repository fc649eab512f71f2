// Command etcd runs a single-member etcd (go.etcd.io/etcd/server/v3/embed)
// on loopback for hotsnap's demos and scripts. It is not a production etcd:
// one member, no TLS, listening on 127.0.0.1 only.
package main

import (
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"
	"syscall"

	"go.etcd.io/etcd/server/v3/embed"

	"github.com/hotsnap/hotsnap/internal/etcdembed"
)

func main() {
	dir := flag.String("data-dir", "", "etcd data dir (required)")
	client := flag.Int("client-port", 2379, "loopback client port")
	peer := flag.Int("peer-port", 2380, "loopback peer port")
	flag.Parse()
	if *dir == "" {
		log.Fatal("--data-dir is required")
	}
	cfg := etcdembed.Config(*dir, *client, *peer)
	e, err := embed.StartEtcd(cfg)
	if err != nil {
		log.Fatal(err)
	}
	<-e.Server.ReadyNotify()
	fmt.Println(cfg.ListenClientUrls[0].String())
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	select {
	case <-sig:
	case err := <-e.Err():
		log.Print(err)
	}
	e.Close()
}
