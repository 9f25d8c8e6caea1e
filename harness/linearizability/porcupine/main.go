// chaoslab-porcupine checks one history for linearizability with porcupine, the checker of
// MIT 6.5840 and of etcd's robustness tests. The harness writes a history as JSON on stdin;
// this program answers the verdict as JSON on stdout and, when asked, writes porcupine's HTML
// visualization annotated with the faults injected meanwhile.
//
// Models: "register" (read/write), "cas-register" (read/write/cas) and "kv" (get/put/append).
// Every model is partitioned per key, so long histories over many keys check fast.
package main

import (
	"encoding/json"
	"fmt"
	"hash/fnv"
	"os"
	"sort"
	"time"

	"github.com/anishathalye/porcupine"
)

// Version is what -version prints; the harness keys its cache on it.
const Version = "chaoslab-porcupine 1 (porcupine v1.3.1)"

// maxViolations: keys explained at most; a story of more says nothing more.
const maxViolations = 3

type output struct {
	Value   *string `json:"value"`
	Ok      bool    `json:"ok"`
	Unknown bool    `json:"unknown"`
}

type operation struct {
	ID     int     `json:"id"`
	Client int     `json:"client"`
	F      string  `json:"f"`
	Key    string  `json:"key"`
	Value  *string `json:"value"`
	New    *string `json:"new"`
	Call   int64   `json:"call"`
	Return *int64  `json:"return"` // null: the outcome is unknown, it may take effect any time after its call
	Output output  `json:"output"`
}

type annotation struct {
	Start   int64  `json:"start"`
	End     int64  `json:"end"`
	Text    string `json:"text"`
	Details string `json:"details"`
}

type request struct {
	Model         string       `json:"model"`
	TimeoutMs     int64        `json:"timeout_ms"`
	ExplainMs     int64        `json:"explain_ms"` // budget for the story and the picture of a violation
	Visualization string       `json:"visualization"`
	Operations    []operation  `json:"operations"`
	Annotations   []annotation `json:"annotations"`
}

type violation struct {
	Key     string `json:"key"`
	Ordered []int  `json:"ordered"` // ids of the longest order that explains what was seen
	State   string `json:"state"`   // the state after that order
	Stuck   []int  `json:"stuck"`   // ids of the operations that could come next, none of which fits
}

type response struct {
	Result        string      `json:"result"`
	ElapsedMs     float64     `json:"elapsed_ms"`
	Operations    int         `json:"operations"`
	Keys          int         `json:"keys"`
	Violations    []violation `json:"violations"`
	Visualization string      `json:"visualization,omitempty"`
	Error         string      `json:"error,omitempty"`
}

// registerState is comparable with ==: porcupine's default equality.
type registerState struct {
	Set   bool
	Value string
}

func str(p *string) string {
	if p == nil {
		return "null"
	}
	return fmt.Sprintf("%q", *p)
}

func partitionByKey(history []porcupine.Operation) [][]porcupine.Operation {
	byKey := map[string][]porcupine.Operation{}
	for _, op := range history {
		key := op.Input.(operation).Key
		byKey[key] = append(byKey[key], op)
	}
	keys := make([]string, 0, len(byKey))
	for key := range byKey {
		keys = append(keys, key)
	}
	sort.Strings(keys)
	out := make([][]porcupine.Operation, 0, len(keys))
	for _, key := range keys {
		out = append(out, byKey[key])
	}
	return out
}

func registerModel(cas bool) porcupine.Model {
	return porcupine.Model{
		Partition: partitionByKey,
		Init:      func() interface{} { return registerState{} },
		Step: func(state, input, out interface{}) (bool, interface{}) {
			st := state.(registerState)
			in := input.(operation)
			o := out.(output)
			switch in.F {
			case "write":
				return true, registerState{Set: true, Value: *in.Value}
			case "cas":
				matches := in.Value == nil && !st.Set || in.Value != nil && st.Set && st.Value == *in.Value
				next := st
				if matches {
					next = registerState{Set: true, Value: *in.New}
				}
				return o.Unknown || matches == o.Ok, next
			default: // read
				if o.Unknown {
					return true, st
				}
				if o.Value == nil {
					return !st.Set, st
				}
				return st.Set && st.Value == *o.Value, st
			}
		},
		DescribeOperation: func(input, out interface{}) string {
			in := input.(operation)
			o := out.(output)
			prefix := ""
			if in.Key != "" {
				prefix = fmt.Sprintf("%q ", in.Key)
			}
			switch in.F {
			case "write":
				return fmt.Sprintf("%swrite(%s)", prefix, str(in.Value))
			case "cas":
				answer := "fail"
				if o.Unknown {
					answer = "unknown"
				} else if o.Ok {
					answer = "ok"
				}
				return fmt.Sprintf("%scas(%s, %s) -> %s", prefix, str(in.Value), str(in.New), answer)
			default:
				return fmt.Sprintf("%sread() -> %s", prefix, str(o.Value))
			}
		},
		DescribeState: func(state interface{}) string {
			st := state.(registerState)
			if !st.Set {
				return "null"
			}
			return fmt.Sprintf("%q", st.Value)
		},
	}
}

func kvModel() porcupine.Model {
	return porcupine.Model{
		Partition: partitionByKey,
		Init:      func() interface{} { return "" },
		Step: func(state, input, out interface{}) (bool, interface{}) {
			st := state.(string)
			in := input.(operation)
			switch in.F {
			case "put":
				return true, *in.Value
			case "append":
				return true, st + *in.Value
			default: // get
				o := out.(output)
				read := ""
				if o.Value != nil {
					read = *o.Value
				}
				return o.Unknown || read == st, st
			}
		},
		Hash: func(state interface{}) uint64 {
			h := fnv.New64a()
			h.Write([]byte(state.(string)))
			return h.Sum64()
		},
		DescribeOperation: func(input, out interface{}) string {
			in := input.(operation)
			o := out.(output)
			switch in.F {
			case "put":
				return fmt.Sprintf("put(%q, %s)", in.Key, str(in.Value))
			case "append":
				return fmt.Sprintf("append(%q, %s)", in.Key, str(in.Value))
			default:
				read := ""
				if o.Value != nil {
					read = *o.Value
				}
				return fmt.Sprintf("get(%q) -> %q", in.Key, read)
			}
		},
		DescribeState: func(state interface{}) string { return fmt.Sprintf("%q", state.(string)) },
	}
}

func modelNamed(name string) (porcupine.Model, error) {
	switch name {
	case "register":
		return registerModel(false), nil
	case "cas-register":
		return registerModel(true), nil
	case "kv":
		return kvModel(), nil
	}
	return porcupine.Model{}, fmt.Errorf("unknown model %q (known: register, cas-register, kv)", name)
}

// validate refuses what a model cannot step on, so that a malformed history is an error and
// never a verdict.
func validate(model string, ops []operation) error {
	known := map[string][]string{
		"register":     {"read", "write"},
		"cas-register": {"read", "write", "cas"},
		"kv":           {"get", "put", "append"},
	}[model]
	for _, op := range ops {
		ok := false
		for _, f := range known {
			ok = ok || op.F == f
		}
		if !ok {
			return fmt.Errorf("operation %d: %q is not an operation of the %s model (%v)", op.ID, op.F, model, known)
		}
		if (op.F == "write" || op.F == "put" || op.F == "append") && op.Value == nil {
			return fmt.Errorf("operation %d: %s needs a value", op.ID, op.F)
		}
		if op.F == "cas" && op.New == nil {
			return fmt.Errorf("operation %d: cas needs a new value", op.ID)
		}
		if op.Return != nil && *op.Return < op.Call {
			return fmt.Errorf("operation %d returns (%d) before its call (%d)", op.ID, *op.Return, op.Call)
		}
	}
	return nil
}

func check(req request) response {
	model, err := modelNamed(req.Model)
	if err == nil {
		err = validate(req.Model, req.Operations)
	}
	if err != nil {
		return response{Result: "Error", Error: err.Error()}
	}
	var end int64
	for _, op := range req.Operations {
		end = max(end, op.Call)
		if op.Return != nil {
			end = max(end, *op.Return)
		}
	}
	history := make([]porcupine.Operation, 0, len(req.Operations))
	keys := map[string]bool{}
	for _, op := range req.Operations {
		ret := end + 1 // unknown: pending until after everything else
		if op.Return != nil {
			ret = *op.Return
		}
		keys[op.Key] = true
		history = append(history, porcupine.Operation{
			ClientId: op.Client, Input: op, Call: op.Call, Output: op.Output, Return: ret, Metadata: op.ID,
		})
	}
	timeout := time.Duration(req.TimeoutMs) * time.Millisecond
	explain := time.Duration(req.ExplainMs) * time.Millisecond
	if explain <= 0 {
		explain = 5 * time.Second
	}
	began := time.Now()
	// The verdict first, without the bookkeeping a story needs: porcupine stops at the first
	// key it cannot order. Only then, within the explain budget, the story and the picture.
	result := porcupine.CheckOperationsTimeout(model, history, timeout)
	resp := response{
		Result:     string(result),
		ElapsedMs:  float64(time.Since(began).Microseconds()) / 1000,
		Operations: len(history),
		Keys:       len(keys),
		Violations: []violation{},
	}
	if result != porcupine.Illegal {
		return resp
	}
	deadline := time.Now().Add(explain)
	resp.Violations = violations(model, partitionByKey(history), deadline)
	if req.Visualization != "" {
		_, info := porcupine.CheckOperationsVerbose(model, history, max(time.Until(deadline), explain/2))
		notes := make([]porcupine.Annotation, 0, len(req.Annotations))
		for _, a := range req.Annotations {
			notes = append(notes, porcupine.Annotation{
				Tag: "faults", Start: a.Start, End: a.End, Description: a.Text, Details: a.Details,
				BackgroundColor: "#f9d7d7",
			})
		}
		info.AddAnnotations(notes)
		if err := porcupine.VisualizePath(model, info, req.Visualization); err != nil {
			resp.Error = "the visualization could not be written: " + err.Error()
		} else {
			resp.Visualization = req.Visualization
		}
	}
	return resp
}

// violations names, per key that cannot be ordered, the longest order porcupine found and the
// operations that could come after it, none of which the model accepts there. Each key is
// checked alone (the whole check stops at the first illegal key, leaving others unexplored),
// each within a share of what is left of the budget: a key that takes longer is left out.
func violations(model porcupine.Model, partitions [][]porcupine.Operation, deadline time.Time) []violation {
	out := []violation{}
	for n, partition := range partitions {
		share := time.Until(deadline) / time.Duration(len(partitions)-n)
		if share < 2*time.Millisecond || len(out) == maxViolations { // porcupine reads 0 as "no limit"
			break
		}
		result, info := porcupine.CheckOperationsVerbose(model, partition, share/2)
		if result != porcupine.Illegal {
			continue
		}
		var longest []porcupine.Operation
		for _, found := range info.PartialLinearizationsOperations() {
			for _, order := range found {
				if len(order) > len(longest) {
					longest = order
				}
			}
		}
		ordered := map[int]bool{}
		v := violation{Key: partition[0].Input.(operation).Key, Ordered: []int{}, Stuck: []int{}}
		state := model.Init()
		for _, op := range longest {
			id := op.Metadata.(int)
			ordered[id] = true
			v.Ordered = append(v.Ordered, id)
			_, state = model.Step(state, op.Input, op.Output)
		}
		v.State = model.DescribeState(state)
		var rest []porcupine.Operation
		earliestReturn := int64(1<<63 - 1)
		for _, op := range partition {
			if !ordered[op.Metadata.(int)] {
				rest = append(rest, op)
				earliestReturn = min(earliestReturn, op.Return)
			}
		}
		for _, op := range rest {
			if op.Call <= earliestReturn {
				v.Stuck = append(v.Stuck, op.Metadata.(int))
			}
		}
		out = append(out, v)
	}
	return out
}

func main() {
	if len(os.Args) > 1 && (os.Args[1] == "-version" || os.Args[1] == "--version") {
		fmt.Println(Version)
		return
	}
	var req request
	decoder := json.NewDecoder(os.Stdin)
	decoder.DisallowUnknownFields()
	var resp response
	if err := decoder.Decode(&req); err != nil {
		resp = response{Result: "Error", Error: "the history is not valid JSON: " + err.Error()}
	} else {
		resp = check(req)
	}
	if err := json.NewEncoder(os.Stdout).Encode(resp); err != nil {
		os.Exit(2)
	}
	if resp.Result == "Error" {
		os.Exit(2)
	}
}
