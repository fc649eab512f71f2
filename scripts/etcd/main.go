// Command etcd runs a single-member etcd (go.etcd.io/etcd/server/v3/embed)
// on loopback for hotsnap's demos and scripts. It is not a production etcd:
// one member, listening on 127.0.0.1 only. With --tls-dir it is secured as
// a production etcd should be: it writes a CA, its certificate, a client
// certificate for the user root and root's password into that directory,
// serves TLS only with client certificates required, and turns etcd's
// authentication on. It prints its client URL when ready.
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"
	"syscall"
	"time"

	"go.etcd.io/etcd/server/v3/embed"

	"github.com/hotsnap/hotsnap/internal/testutil/etcdembed"
)

func main() {
	dir := flag.String("data-dir", "", "etcd data dir (required)")
	client := flag.Int("client-port", 2379, "loopback client port")
	peer := flag.Int("peer-port", 2380, "loopback peer port")
	tlsDir := flag.String("tls-dir", "", "secure etcd: write credentials here (ca.pem, client.pem, client-key.pem, root.password), TLS with client certificates, auth on")
	flag.Parse()
	if *dir == "" {
		log.Fatal("--data-dir is required")
	}
	cfg := etcdembed.Config(*dir, *client, *peer)
	var files *etcdembed.Files
	if *tlsDir != "" {
		var err error
		if files, err = etcdembed.WriteFiles(*tlsDir); err != nil {
			log.Fatal(err)
		}
		etcdembed.Secure(cfg, files)
	}
	e, err := embed.StartEtcd(cfg)
	if err != nil {
		log.Fatal(err)
	}
	<-e.Server.ReadyNotify()
	if files != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		err := etcdembed.EnableAuth(ctx, cfg.ListenClientUrls[0], files)
		cancel()
		if err != nil {
			e.Close()
			log.Fatal(err)
		}
	}
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
