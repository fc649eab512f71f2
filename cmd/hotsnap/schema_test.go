package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/hotsnap/hotsnap/archive"
	"github.com/hotsnap/hotsnap/archive/repo"
	"github.com/hotsnap/hotsnap/cluster"
	"github.com/hotsnap/hotsnap/manifest"
	"github.com/hotsnap/hotsnap/pipeline"
	"github.com/hotsnap/hotsnap/report"
	"github.com/hotsnap/hotsnap/snapshot"
)

// The JSON Schemas of docs/schema/ (draft 2020-12): one per command's
// result, and the shared lines (progress, error, the items of ls and
// diff). They are written from the Go types the commands print
// (HOTSNAP_UPDATE_DOCS=1, make docs), checked for staleness, and every
// line TestContract_JSONLines sees is validated against them.

type (
	schemaList struct {
		Snapshots []report.ListItem `json:"snapshots"`
	}
	schemaDelete struct {
		ID      string   `json:"id"`
		Deleted []string `json:"deleted"`
		Absent  []string `json:"absent"`
	}
	schemaLs struct {
		ID      string `json:"id"`
		Entries int    `json:"entries"`
	}
	schemaFailsafes struct {
		Failsafes []snapshot.FailsafeInfo `json:"failsafes"`
	}
	schemaArchiveLs struct {
		Snapshots []repo.RemoteSnapshot `json:"snapshots"`
	}
	schemaUnlock struct {
		Removed []string `json:"removed"`
		Kept    []string `json:"kept"`
	}
	schemaKeygen struct {
		KeyFile string `json:"keyFile"`
		KeyID   string `json:"keyId"`
	}
	schemaVersion struct {
		Version        string `json:"version"`
		ManifestFormat int    `json:"manifestFormat"`
		ArchiveFormat  int    `json:"archiveFormat"`
	}
	schemaError struct {
		Error struct {
			Message string `json:"message"`
			Code    int    `json:"code"`
			Kind    string `json:"kind"`
		} `json:"error"`
	}
	schemaArchiveInit struct {
		Remote     string             `json:"remote"`
		ID         string             `json:"id"`
		PackSize   int                `json:"packSize"`
		Chunker    repo.ChunkerParams `json:"chunker"`
		KeyID      string             `json:"keyId"`
		KeyFile    string             `json:"keyFile"`
		ObjectLock *repo.ObjectLock   `json:"objectLock"`
	}
	schemaKeyList struct {
		KeyFiles    []string `json:"keyFiles"`
		DataKeyFile string   `json:"dataKeyFile"`
	}
	schemaKeyAdded struct {
		Added string `json:"added"`
	}
	schemaKeyRemoved struct {
		Removed string `json:"removed"`
	}
	schemaDropped struct {
		Dropped []snapshot.FailsafeInfo `json:"dropped"`
	}
	schemaClusterList struct {
		Cluster     string            `json:"cluster"`
		Nodes       []string          `json:"nodes"`
		Snapshots   []report.ListItem `json:"snapshots"`
		Unreachable map[string]string `json:"unreachable"`
	}
	schemaJobs struct {
		Jobs []cluster.Job `json:"jobs"`
	}
	schemaClusterPlan struct {
		Cluster  string           `json:"cluster"`
		Revision int64            `json:"revision"`
		Nodes    []cluster.Member `json:"nodes"`
		User     json.RawMessage  `json:"user"`
		Expected []string         `json:"expected"`
		Missing  []string         `json:"missing"`
	}
	schemaClusterProgress struct {
		Op        string        `json:"op"`
		ID        string        `json:"id"`
		JobID     string        `json:"jobId"`
		Nodes     int           `json:"nodes"`
		NodesDone int           `json:"nodesDone"`
		Jobs      []cluster.Job `json:"jobs"`
	}
	schemaProgress struct {
		Op             string `json:"op"`
		FilesDone      int64  `json:"filesDone"`
		FilesTotal     int64  `json:"filesTotal"`
		BytesDone      int64  `json:"bytesDone"`
		BytesTotal     int64  `json:"bytesTotal"`
		BytesPerSecond int64  `json:"bytesPerSecond"`
		EtaSeconds     int64  `json:"etaSeconds"`
	}
)

// schemaTypes names each schema file and the type of its lines' fields.
var schemaTypes = map[string]any{
	"create":                snapshot.CreateResult{},
	"list":                  schemaList{},
	"verify":                report.VerifyResult{},
	"delete":                schemaDelete{},
	"ls":                    schemaLs{},
	"ls-item":               report.LsEntry{},
	"diff":                  report.DiffResult{},
	"diff-item":             manifest.Change{},
	"usage":                 snapshot.UsageResult{},
	"prune":                 snapshot.PruneResult{},
	"failsafe-list":         schemaFailsafes{},
	"recover":               snapshot.RecoverResult{},
	"restore":               snapshot.RestoreResult{},
	"restore-target":        snapshot.ExtractResult{},
	"upload":                archive.UploadResult{},
	"download":              archive.DownloadResult{},
	"download-target":       archive.ExtractResult{},
	"archive-ls":            schemaArchiveLs{},
	"archive-check":         archive.CheckResult{},
	"archive-forget":        archive.ForgetResult{},
	"archive-gc":            archive.GCResult{},
	"archive-unlock":        schemaUnlock{},
	"archive-keygen":        schemaKeygen{},
	"version":               schemaVersion{},
	"error":                 schemaError{},
	"cluster-create":        cluster.CreateResult{},
	"cluster-list":          schemaClusterList{},
	"cluster-delete":        cluster.DeleteResult{},
	"cluster-restore":       cluster.RestoreResult{},
	"cluster-upload":        cluster.JobsResult{},
	"cluster-download":      cluster.JobsResult{},
	"cluster-verify":        cluster.JobsResult{},
	"cluster-status":        schemaJobs{},
	"cluster-abort":         schemaJobs{},
	"cluster-plan":          schemaClusterPlan{},
	"cluster-prune":         cluster.PruneResult{},
	"cluster-run":           pipeline.Result{},
	"cluster-progress":      schemaClusterProgress{},
	"run":                   pipeline.Result{},
	"archive-init":          schemaArchiveInit{},
	"archive-key-list":      schemaKeyList{},
	"archive-key-add":       schemaKeyAdded{},
	"archive-key-remove":    schemaKeyRemoved{},
	"failsafe-drop":         schemaDropped{},
	"run-item":              pipeline.Result{},
	"cluster-run-item":      pipeline.Result{},
	"cluster-upload-item":   cluster.JobsResult{},
	"cluster-download-item": cluster.JobsResult{},
	"cluster-verify-item":   cluster.JobsResult{},
	"progress":              schemaProgress{},
}

// schemaOf is the JSON Schema of t's JSON form.
func schemaOf(t reflect.Type) map[string]any {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch {
	case t == reflect.TypeOf(time.Time{}):
		return map[string]any{"type": "string", "format": "date-time"}
	case t == reflect.TypeOf(json.RawMessage{}):
		return map[string]any{}
	}
	switch t.Kind() {
	case reflect.String:
		return map[string]any{"type": "string"}
	case reflect.Bool:
		return map[string]any{"type": "boolean"}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64, reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return map[string]any{"type": "integer"}
	case reflect.Float32, reflect.Float64:
		return map[string]any{"type": "number"}
	case reflect.Slice, reflect.Array:
		return map[string]any{"type": []string{"array", "null"}, "items": schemaOf(t.Elem())}
	case reflect.Map:
		return map[string]any{"type": []string{"object", "null"}, "additionalProperties": schemaOf(t.Elem())}
	case reflect.Interface:
		return map[string]any{}
	case reflect.Struct:
		props := map[string]any{}
		var required []string
		addFields(t, props, &required)
		sort.Strings(required)
		return map[string]any{"type": "object", "properties": props, "required": required, "additionalProperties": false}
	}
	panic("no schema for " + t.String())
}

func addFields(t reflect.Type, props map[string]any, required *[]string) {
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		if tag == "-" || !f.IsExported() && !f.Anonymous {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		if f.Anonymous && name == "" {
			ft := f.Type
			for ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			addFields(ft, props, required)
			continue
		}
		if name == "" {
			name = f.Name
		}
		s := schemaOf(f.Type)
		if f.Type.Kind() == reflect.Pointer {
			s = map[string]any{"anyOf": []any{s, map[string]any{"type": "null"}}}
		}
		props[name] = s
		if !strings.Contains(opts, "omitempty") && f.Type.Kind() != reflect.Pointer {
			*required = append(*required, name)
		}
	}
}

// lineSchema is the schema of one line: the type's fields and "event".
func lineSchema(name string, v any) map[string]any {
	s := schemaOf(reflect.TypeOf(v))
	event := "result"
	switch {
	case name == "error":
		event = report.Error
	case strings.HasSuffix(name, "progress"):
		event = report.Progress
	case strings.HasSuffix(name, "-item"):
		event = "item"
	}
	s["properties"].(map[string]any)["event"] = map[string]any{"const": event}
	s["required"] = append([]string{"event"}, s["required"].([]string)...)
	s["$schema"] = "https://json-schema.org/draft/2020-12/schema"
	s["$id"] = "https://github.com/hotsnap/hotsnap/docs/schema/" + name + ".json"
	s["title"] = "hotsnap " + strings.ReplaceAll(name, "-", " ") + " --json: a " + event + " line"
	return s
}

// TestSchemas_Fresh: docs/schema/ holds one schema per entry of
// schemaTypes, as the types say today.
func TestSchemas_Fresh(t *testing.T) {
	dir := filepath.Join("..", "..", "docs", "schema")
	update := os.Getenv("HOTSNAP_UPDATE_DOCS") != ""
	if update {
		os.MkdirAll(dir, 0o755)
	}
	for name, v := range schemaTypes {
		want, _ := json.MarshalIndent(lineSchema(name, v), "", "  ")
		want = append(want, '\n')
		path := filepath.Join(dir, name+".json")
		if update {
			if err := os.WriteFile(path, want, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		if got, err := os.ReadFile(path); err != nil || string(got) != string(want) {
			t.Errorf("%s is stale (%v): run `make docs`", path, err)
		}
	}
	files, _ := filepath.Glob(filepath.Join(dir, "*.json"))
	if len(files) != len(schemaTypes) {
		t.Errorf("docs/schema holds %d files, the table %d", len(files), len(schemaTypes))
	}
}

// validate checks v (decoded JSON) against s, a schema of the subset
// schemaOf writes; it returns the first mismatch.
func validate(s map[string]any, v any, at string) error {
	if c, ok := s["const"]; ok && c != v {
		return fmt.Errorf("%s: %v, want %v", at, v, c)
	}
	if alts, ok := s["anyOf"].([]any); ok {
		var errs []string
		for _, alt := range alts {
			if err := validate(alt.(map[string]any), v, at); err == nil {
				return nil
			} else {
				errs = append(errs, err.Error())
			}
		}
		return fmt.Errorf("%s: none of %v", at, errs)
	}
	typ, ok := s["type"]
	if !ok {
		return nil
	}
	var types []string
	switch x := typ.(type) {
	case string:
		types = []string{x}
	case []any:
		for _, y := range x {
			types = append(types, y.(string))
		}
	}
	kind := ""
	switch x := v.(type) {
	case nil:
		kind = "null"
	case bool:
		kind = "boolean"
	case string:
		kind = "string"
	case float64:
		kind = "number"
		if x == float64(int64(x)) {
			kind = "integer"
		}
	case []any:
		kind = "array"
	case map[string]any:
		kind = "object"
	}
	match := false
	for _, tp := range types {
		match = match || tp == kind || tp == "number" && kind == "integer"
	}
	if !match {
		return fmt.Errorf("%s: a %s, want %v", at, kind, types)
	}
	switch x := v.(type) {
	case []any:
		if items, ok := s["items"].(map[string]any); ok {
			for i, e := range x {
				if err := validate(items, e, fmt.Sprintf("%s[%d]", at, i)); err != nil {
					return err
				}
			}
		}
	case map[string]any:
		props, _ := s["properties"].(map[string]any)
		for _, r := range asStrings(s["required"]) {
			if _, ok := x[r]; !ok {
				return fmt.Errorf("%s: no %q", at, r)
			}
		}
		for k, e := range x {
			if ps, ok := props[k].(map[string]any); ok {
				if err := validate(ps, e, at+"."+k); err != nil {
					return err
				}
				continue
			}
			switch ap := s["additionalProperties"].(type) {
			case bool:
				if !ap {
					return fmt.Errorf("%s: %q is in no schema", at, k)
				}
			case map[string]any:
				if err := validate(ap, e, at+"."+k); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

func asStrings(v any) []string {
	var out []string
	switch x := v.(type) {
	case []string:
		out = x
	case []any:
		for _, y := range x {
			out = append(out, y.(string))
		}
	}
	return out
}

// schemaFor names the schema of a line of `hotsnap args` with event ev.
func schemaFor(args []string, ev string) string {
	clusterCmd := len(args) > 0 && args[0] == "cluster"
	switch {
	case ev == report.Error:
		return ev
	case ev == report.Progress && clusterCmd:
		return "cluster-progress"
	case ev == report.Progress:
		return ev
	}
	var words []string
	target := false
	for _, a := range args {
		if a == "--target" {
			target = true
		}
		max := 2
		if len(words) >= 2 && words[0] == "archive" && words[1] == "key" {
			max = 3
		}
		if !strings.HasPrefix(a, "-") && len(words) < max && (len(words) == 0 || words[0] == "archive" || words[0] == "failsafe" || words[0] == "cluster") {
			words = append(words, a)
		}
	}
	name := strings.Join(words, "-")
	if target {
		name += "-target"
	}
	if ev == report.Item {
		name += "-item"
	}
	return name
}

// validateLines holds every line of a --json output to its schema.
func validateLines(t *testing.T, args []string, out string) {
	t.Helper()
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		var v map[string]any
		json.Unmarshal([]byte(line), &v)
		name := schemaFor(args, fmt.Sprint(v["event"]))
		b, err := os.ReadFile(filepath.Join("..", "..", "docs", "schema", name+".json"))
		if err != nil {
			t.Fatalf("hotsnap %s: no schema %s for %s", strings.Join(args, " "), name, line)
		}
		var s map[string]any
		json.Unmarshal(b, &s)
		if err := validate(s, v, name); err != nil {
			t.Fatalf("hotsnap %s: %s does not hold to docs/schema/%s.json: %v", strings.Join(args, " "), line, name, err)
		}
	}
}
