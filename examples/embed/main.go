// Command embed is the smallest leader-elected loop built on this module:
// the shape a driver author starts from. Run it with a kubeconfig:
//
//	go run ./examples/embed /path/to/kubeconfig
package main

import (
	"context"
	"os"
	"os/signal"

	"k8s.io/client-go/tools/clientcmd"

	"github.com/csi-kit/sidecars/leaderelection"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	cfg, err := clientcmd.BuildConfigFromFlags("", os.Args[1])
	if err != nil {
		panic(err)
	}
	opts := leaderelection.Options{LockName: "my-driver", Namespace: "default"}
	client, _ := leaderelection.NewClient(cfg, opts)
	elector, err := leaderelection.New(opts, client)
	if err != nil {
		panic(err)
	}
	err = elector.Run(ctx, func(ctx context.Context) error {
		println("leading as", elector.Identity())
		<-ctx.Done() // your controllers run here
		return nil
	})
	if err != nil {
		panic(err)
	}
}
