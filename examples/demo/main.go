// Command demo walks the five field scenarios — the stories real users tell
// about the CSI sidecars, numbered 000 to 004 — on a local control plane, with
// the example driver and this module's sidecar binaries started with the
// flags those users ran.
//
//	make demo          # or: go run ./examples/demo
//
// It prints what a user would see at each step and ends with a summary
// table; the exit status is non-zero if any scenario failed. There is no
// kubelet: steps that a kubelet would perform are done by the demo and
// labelled "[kubelet stand-in]".
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"
)

type scenario struct {
	name string
	seed string
	run  func(ctx context.Context, e *env) error
}

func main() {
	keep := flag.Bool("keep", false, "keep the work directory (logs, state) after the run")
	only := flag.String("only", "", "run only scenarios whose name contains this text")
	flag.Parse()

	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()

	e, err := setup(ctx)
	if err != nil {
		fmt.Fprintf(os.Stderr, "\ndemo: setup failed: %v\n", err)
		os.Exit(1)
	}
	defer e.teardown(*keep)

	scenarios := []scenario{
		{"cloud disk 20Gi -> 30Gi, leader-elected resizer", "000", scenarioCloudDiskExpand},
		{"WaitForFirstConsumer local volume on a node with room; 2Gi -> 4Gi", "001", scenarioLocalVolume},
		{"offline-only expansion waits for the pod; online needs no node step", "002", scenarioOfflineExpand},
		{"zonal disk created in the zone of the scheduled node", "003", scenarioTopology},
		{"snapshot, restore, clone, Delete vs Retain, HA replicas", "004", scenarioSnapshots},
		{"kubectl csi explain on a claim stuck on purpose", "-", scenarioExplain},
	}
	type result struct {
		s    scenario
		err  error
		took time.Duration
	}
	var results []result
	for i, s := range scenarios {
		if *only != "" && !strings.Contains(s.name+" "+s.seed, *only) {
			continue
		}
		origin := "field scenario " + s.seed
		if s.seed == "-" {
			origin = "no field scenario: a tool check"
		}
		e.banner(fmt.Sprintf("Scenario %d/%d (%s): %s", i+1, len(scenarios), origin, s.name))
		start := time.Now()
		sctx, scancel := context.WithTimeout(ctx, 4*time.Minute)
		err := s.run(sctx, e)
		scancel()
		took := time.Since(start)
		if err != nil {
			e.say("FAILED: %v", err)
			e.say("Logs of every process are in %s", e.dir)
			*keep = true
		} else {
			e.say("PASSED in %.1fs", took.Seconds())
		}
		results = append(results, result{s, err, took})
		if ctx.Err() != nil {
			break
		}
	}

	fmt.Println()
	fmt.Println("Summary")
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "FIELD SCENARIO\tWHAT\tRESULT\tSECONDS")
	failed := 0
	for _, r := range results {
		res := "ok"
		if r.err != nil {
			res = "FAILED"
			failed++
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%.1f\n", r.s.seed, r.s.name, res, r.took.Seconds())
	}
	tw.Flush()
	if failed > 0 || len(results) == 0 {
		fmt.Printf("\n%d of %d scenarios failed; logs in %s\n", failed, len(results), e.dir)
		e.teardown(true)
		os.Exit(1)
	}
	fmt.Printf("\nAll %d scenarios passed (total %.0fs).\n", len(results), time.Since(e.started).Seconds())
}
