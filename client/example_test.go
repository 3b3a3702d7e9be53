package client_test

import (
	"context"
	"fmt"
	"time"

	"github.com/artemis-go/artemis/client"
	"github.com/artemis-go/artemis/core"
	"github.com/artemis-go/artemis/server"
	"github.com/artemis-go/artemis/server/servertest"
)

// startNode runs a registry node on loopback for the examples.
func startNode() (string, func()) {
	n := servertest.Start(nil, core.Config{}, server.Config{})
	return n.URL, n.Stop
}

// A provider registers an instance; a consumer reads the service.
func Example() {
	url, stop := startNode()
	defer stop()
	ctx := context.Background()

	provider, err := client.NewRegistry(ctx, []string{url})
	if err != nil {
		panic(err)
	}
	defer provider.Close(ctx) // unregisters
	err = provider.Register(ctx, client.Instance{ServiceID: "orders", InstanceID: "orders-1", URL: "http://10.0.0.1:8080", Status: "up"})
	if err != nil {
		panic(err)
	}

	consumer, err := client.NewDiscovery(ctx, []string{url})
	if err != nil {
		panic(err)
	}
	defer consumer.Close()
	svc, err := consumer.Service(ctx, "orders")
	if err != nil {
		panic(err)
	}
	for _, inst := range svc.Instances {
		fmt.Println(inst.InstanceID, inst.URL)
	}
	// Output: orders-1 http://10.0.0.1:8080
}

// A consumer watches a service and is told of every change as it is pushed.
func ExampleDiscovery_Watch() {
	url, stop := startNode()
	defer stop()
	ctx := context.Background()
	consumer, _ := client.NewDiscovery(ctx, []string{url})
	defer consumer.Close()

	seen := make(chan int, 8)
	consumer.Watch(ctx, "payments", func(s client.Service) { seen <- len(s.Instances) })
	fmt.Println("instances:", <-seen)

	provider, _ := client.NewRegistry(ctx, []string{url})
	defer provider.Close(ctx)
	time.Sleep(100 * time.Millisecond) // let the subscription reach the node
	provider.Register(ctx, client.Instance{ServiceID: "payments", InstanceID: "pay-1", URL: "http://10.0.0.2:8080"})
	fmt.Println("instances:", <-seen)
	// Output:
	// instances: 0
	// instances: 1
}
