// Command embed-resizer embeds a leader-elected resizer in a driver's own
// binary: the code the README shows.
//
//	go run ./examples/embed-resizer /path/to/kubeconfig /csi/csi.sock
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/csi-kit/sidecars/csiconn"
	"github.com/csi-kit/sidecars/leaderelection"
	"github.com/csi-kit/sidecars/resizer"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	if err := run(ctx, os.Args[1], os.Args[2]); err != nil {
		println(err.Error()) // e.g. "CSI driver at /csi/csi.sock did not accept a connection within 30s ..."
		os.Exit(1)
	}
}

func run(ctx context.Context, kubeconfig, socket string) error {
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return err
	}
	conn, err := csiconn.Connect(ctx, csiconn.Options{Address: socket})
	if err != nil {
		return err
	}
	defer conn.Close()
	drv, err := resizer.NewCSIDriver(ctx, conn)
	if err != nil {
		return err
	}
	opts := leaderelection.Options{LockName: leaderelection.LockName(leaderelection.ComponentResizer, conn.DriverName())}
	leClient, err := leaderelection.NewClient(cfg, opts)
	if err != nil {
		return err
	}
	elector, err := leaderelection.New(opts, leClient)
	if err != nil {
		return err
	}
	return elector.Run(ctx, func(ctx context.Context) error {
		r, err := resizer.New(resizer.Options{}, kubernetes.NewForConfigOrDie(cfg), drv)
		if err != nil {
			return err
		}
		return r.Run(ctx) // returns on ctx end, or on a lost driver connection
	})
}
