package api_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/kiln-ml/kiln/errdefs"
	"github.com/kiln-ml/kiln/pii"
	"github.com/kiln-ml/kiln/store"
)

func TestPIIReport(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *store.DB) {
		e := newEnv(t, db)
		ctx := context.Background()
		dir := t.TempDir()
		writeTree(t, dir, map[string]string{
			"tickets.csv": "id,comment,amount\n1,mail me at ada@example.com,3\n2,call +442079460958 or ada@example.com,4\n3,all fine,5\n",
			"other.csv":   "id,note\n1,card 4242 4242 4242 4242\n",
		})
		ref := e.add(t, "tickets", dir).Version.Ref()
		rep, err := e.c.PII(ctx, ref, "", "")
		if err != nil {
			t.Fatal(err)
		}
		files := map[string]*pii.ColumnReport{}
		for _, f := range rep.Files {
			files[f.Path] = f.ColumnReport
		}
		tk, ot := files["tickets.csv"], files["other.csv"]
		if len(rep.Files) != 2 || tk == nil || ot == nil {
			t.Fatalf("files %+v", rep.Files)
		}
		if tk.Rows != 3 || tk.Columns["comment"][pii.Email] != 2 || tk.Columns["comment"][pii.Phone] != 1 || tk.Values["comment"] != 2 || len(tk.Columns) != 1 {
			t.Errorf("tickets.csv: %+v", tk)
		}
		if ot.Columns["note"][pii.Card] != 1 {
			t.Errorf("other.csv: %+v", ot)
		}
		// The report holds counts, never the values.
		if raw, _ := json.Marshal(rep); strings.Contains(string(raw), "ada@") || strings.Contains(string(raw), "4242") {
			t.Errorf("the report holds a value")
		}
		only, err := e.c.PII(ctx, ref, "tickets.csv", "phone")
		if err != nil || len(only.Files) != 1 || only.Files[0].Columns["comment"][pii.Email] != 0 || only.Files[0].Columns["comment"][pii.Phone] != 1 {
			t.Fatalf("phones of tickets.csv: %+v %v", only, err)
		}
		if _, err := e.c.PII(ctx, ref, "", "passport"); !errors.Is(err, errdefs.ErrInvalidArgument) || !strings.Contains(err.Error(), "passport") {
			t.Errorf("unknown kind: %v", err)
		}
	})
}
