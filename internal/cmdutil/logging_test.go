package cmdutil

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// The logging tests run Main in a child process (this test binary again,
// with helperEnv set): the logging configuration is applied once per
// process, as in a real binary.
const helperEnv = "CSIKIT_CMDUTIL_HELPER"

func TestMain(m *testing.M) {
	if os.Getenv(helperEnv) == "" {
		os.Exit(m.Run())
	}
	// A binary that talks to no driver: Main logs "Starting", then fails to
	// build a client (no kubeconfig, not in a cluster) and logs "Exiting".
	fs := flag.NewFlagSet("logtest", flag.ContinueOnError)
	var c Common
	Register(fs, &c, Defaults{NoCSI: true})
	gates := &binaryGates{}
	fs.Var(gates, "feature-gates", "gates")
	Parse(fs, os.Args[1:])
	os.Exit(Main(Program{Name: "logtest", LockComponent: "logtest", Common: &c,
		Run: func(context.Context, *Env) error { return errors.New("not reached") }}))
}

// runHelper runs the helper binary with args and returns its stdout, stderr
// and exit code.
func runHelper(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], args...)
	cmd.Env = append(os.Environ(), helperEnv+"=1", "KUBECONFIG=", "KUBERNETES_SERVICE_HOST=", "KUBERNETES_SERVICE_PORT=")
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &exit):
		code = exit.ExitCode()
	default:
		t.Fatalf("running helper: %v", err)
	}
	return out.String(), errb.String(), code
}

// jsonLines decodes every non-empty line of s as one JSON object; a line
// that is not JSON fails the test.
func jsonLines(t *testing.T, s string) []map[string]any {
	t.Helper()
	var out []map[string]any
	sc := bufio.NewScanner(strings.NewReader(s))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("log line is not JSON: %q: %v", line, err)
		}
		out = append(out, m)
	}
	return out
}

func byMsg(lines []map[string]any, msg string) map[string]any {
	for _, l := range lines {
		if l["msg"] == msg {
			return l
		}
	}
	return nil
}

// TestJSONLogs: --logging-format=json, which manifests set, makes every
// line a JSON object with the message, its key/value pairs and, for errors,
// the error text.
func TestJSONLogs(t *testing.T) {
	stdout, stderr, code := runHelper(t, "--logging-format=json", "--log-flush-frequency=1s", "-v=2")
	if code != 1 {
		t.Fatalf("exit code %d, want 1 (no cluster to reach); stderr:\n%s", code, stderr)
	}
	if stdout != "" {
		t.Errorf("without split streams nothing goes to stdout, got %q", stdout)
	}
	lines := jsonLines(t, stderr)
	start := byMsg(lines, "Starting")
	if start == nil || start["program"] != "logtest" {
		t.Fatalf("no JSON \"Starting\" line with program=logtest in:\n%s", stderr)
	}
	if _, ok := start["ts"]; !ok {
		t.Errorf("JSON line without timestamp: %v", start)
	}
	exiting := byMsg(lines, "Exiting")
	if exiting == nil {
		t.Fatalf("no JSON \"Exiting\" line in:\n%s", stderr)
	}
	if e, _ := exiting["err"].(string); e == "" {
		t.Errorf("the error line carries no err field: %v", exiting)
	}
}

// TestJSONSplitStream: the alpha split-stream flag is refused without its
// gate, with a message naming the gate, and with the gate sends info lines
// to stdout and error lines to stderr. The binary's own gate parser still
// receives its gates, and never the logging ones.
func TestJSONSplitStream(t *testing.T) {
	_, stderr, code := runHelper(t, "--logging-format=json", "--log-json-split-stream")
	if code != 2 || !strings.Contains(stderr, "LoggingAlphaOptions") {
		t.Fatalf("without the gate: exit %d, stderr %q; want 2 and a message naming LoggingAlphaOptions", code, stderr)
	}

	stdout, stderr, code := runHelper(t, "--logging-format=json", "--log-json-split-stream", "--log-json-info-buffer-size=1Ki",
		"--feature-gates=LoggingAlphaOptions=true")
	if code != 1 {
		t.Fatalf("exit code %d, want 1; stderr:\n%s", code, stderr)
	}
	if byMsg(jsonLines(t, stdout), "Starting") == nil {
		t.Errorf("info line \"Starting\" not on stdout:\n%s", stdout)
	}
	errLines := jsonLines(t, stderr)
	if byMsg(errLines, "Exiting") == nil {
		t.Errorf("error line \"Exiting\" not on stderr:\n%s", stderr)
	}
	if byMsg(errLines, "Starting") != nil {
		t.Errorf("info line also on stderr:\n%s", stderr)
	}
}

// TestTextLogsByDefault: without --logging-format the lines are klog text.
func TestTextLogsByDefault(t *testing.T) {
	_, stderr, code := runHelper(t)
	if code != 1 {
		t.Fatalf("exit code %d, want 1; stderr:\n%s", code, stderr)
	}
	if !strings.Contains(stderr, `"Starting" program="logtest"`) {
		t.Errorf("no klog text \"Starting\" line in:\n%s", stderr)
	}
	if strings.HasPrefix(strings.TrimSpace(stderr), "{") {
		t.Errorf("text format printed JSON:\n%s", stderr)
	}
}

// TestLoggingFlagsParsed: the logging flags land in the configuration that
// Main applies, an unknown format is refused, and logging gates do not
// reach the binary's own gate parser.
func TestLoggingFlagsParsed(t *testing.T) {
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	var c Common
	Register(fs, &c, Defaults{Timeout: time.Second})
	gates := &binaryGates{}
	fs.Var(gates, "feature-gates", "gates")
	Parse(fs, []string{"--log-flush-frequency=2s", "-v=4", "--vmodule=foo=5",
		"--feature-gates=Topology=true,LoggingAlphaOptions=true", "--log-text-split-stream", "--logtostderr=true"})
	if got := c.Logging.FlushFrequency.Duration.Duration; got != 2*time.Second {
		t.Errorf("flush frequency %v, want 2s", got)
	}
	if c.Logging.Verbosity != 4 || len(c.Logging.VModule) != 1 {
		t.Errorf("verbosity %d, vmodule %v", c.Logging.Verbosity, c.Logging.VModule)
	}
	if err := c.Check(); err != nil {
		t.Errorf("Check: %v", err)
	}
	if strings.Contains(gates.seen, "Logging") || !strings.Contains(gates.seen, "Topology=true") {
		t.Errorf("binary's gates saw %q, want Topology=true only", gates.seen)
	}

	fs = flag.NewFlagSet("test", flag.ContinueOnError)
	var bad Common
	Register(fs, &bad, Defaults{Timeout: time.Second})
	Parse(fs, []string{"--logging-format=xml"})
	if err := bad.Check(); err == nil || !strings.Contains(err.Error(), "xml") {
		t.Errorf("Check with --logging-format=xml = %v, want an error naming it", err)
	}
}
