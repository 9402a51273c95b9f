package explain_test

import (
	"encoding/json"
	"fmt"
	"reflect"
	"testing"

	"github.com/csi-kit/sidecars/explain"
)

func ExampleReport_json() {
	rep := explain.Report{Kind: explain.KindPVC, Namespace: "default", Name: "data", State: "Pending, class fast, request 1Gi",
		Findings: []explain.Finding{{Severity: explain.Error, Reason: explain.ReasonStorageClassMissing,
			Message: "class fast does not exist", Action: "create it"}}}
	b, _ := json.Marshal(rep)
	fmt.Println(string(b))
	// Output:
	// {"kind":"PersistentVolumeClaim","namespace":"default","name":"data","state":"Pending, class fast, request 1Gi","findings":[{"severity":"Error","reason":"StorageClassMissing","message":"class fast does not exist","action":"create it"}]}
}

func TestReportJSONRoundTrip(t *testing.T) {
	in := explain.Report{Kind: explain.KindPV, Name: "pv-1", State: "Released",
		Findings: []explain.Finding{
			{Severity: explain.Warning, Reason: "A", Message: "m1", Action: "a1"},
			{Severity: explain.Info, Reason: "B", Message: "m2"},
		},
		Unread: []string{"events: forbidden"}}
	b, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	var out explain.Report
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(in, out) {
		t.Errorf("round trip changed the report:\n in  %+v\n out %+v\n json %s", in, out, b)
	}
	var raw map[string]any
	if err := json.Unmarshal(b, &raw); err != nil {
		t.Fatal(err)
	}
	if _, ok := raw["namespace"]; ok {
		t.Errorf("a cluster-scoped report has a namespace: %s", b)
	}
	if err := json.Unmarshal([]byte(`{"findings":[{"severity":"Fatal"}]}`), &out); err == nil {
		t.Error("an unknown severity was accepted")
	}
	if _, err := json.Marshal(explain.Finding{Severity: 7}); err == nil {
		t.Error("an out-of-range severity was marshalled")
	}
}

func TestSortReports(t *testing.T) {
	rep := func(name string, sev explain.Severity) explain.Report {
		return explain.Report{Name: name, Findings: []explain.Finding{{Severity: explain.Info}, {Severity: sev}}}
	}
	reps := []explain.Report{rep("a", explain.Info), rep("c", explain.Error), rep("b", explain.Warning), rep("b2", explain.Error), rep("0", explain.Info)}
	explain.SortReports(reps)
	var got []string
	for _, r := range reps {
		got = append(got, r.Name)
	}
	if want := []string{"b2", "c", "b", "0", "a"}; !reflect.DeepEqual(got, want) {
		t.Errorf("order %v, want %v", got, want)
	}
}
