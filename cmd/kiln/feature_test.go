package main

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

const featureManifest = `apiVersion: kiln.dev/v1
kind: FeatureView
metadata: {name: customer_stats}
spec:
  entities: [customer]
  source: {dataset: customer-stats@latest}
  timestamp_field: event_timestamp
  ttl: 30d
  features:
    - {name: orders_7d, type: int64, default: 0}
  online: true
---
kind: Endpoint
metadata: {name: churn}
spec:
  model: churn
  routes: [{name: main, version: 1, weight: 100}]
---
kind: Entity
metadata: {name: customer}
spec: {join_keys: [customer_id]}
`

func TestFeatureManifests(t *testing.T) {
	docs, err := parseManifests("f.yaml", []byte(featureManifest))
	if err != nil {
		t.Fatal(err)
	}
	entitiesFirst(docs)
	var refs []string
	for _, d := range docs {
		refs = append(refs, d.Ref())
	}
	if want := []string{"entity/customer", "featureview/customer_stats", "endpoint/churn"}; !reflect.DeepEqual(refs, want) {
		t.Fatalf("order %v, want %v", refs, want)
	}
	v := docs[1].FeatureView
	if v.Spec.TTL.D() != 30*24*time.Hour || v.Spec.Online != nil || v.Spec.Features[0].Default != int64(0) {
		t.Fatalf("view not canonical: %+v", v.Spec)
	}
	if docs[0].Entity.APIVersion != "kiln.dev/v1" || !strings.Contains(string(docs[1].JSON), `"ttl":"720h0m0s"`) {
		t.Fatalf("entity %+v, view JSON %s", docs[0].Entity, docs[2].JSON)
	}

	for _, tc := range []struct{ name, in, want string }{
		{"typo", "kind: Entity\nmetadata: {name: c}\nspec: {join_key: [id]}\n", `unknown field "join_key" in spec (did you mean "join_keys"?)`},
		{"bad type", "kind: FeatureView\nmetadata: {name: v}\nspec:\n  entities: [c]\n  source: {path: /x.csv}\n  timestamp_field: ts\n  features: [{name: f, type: int32}]\n",
			`f.yaml:7:30: spec.features[0].type: must be int64, float64, string or bool, not "int32"`},
		{"bad ttl", "kind: FeatureView\nmetadata: {name: v}\nspec:\n  entities: [c]\n  source: {path: /x.csv}\n  timestamp_field: ts\n  ttl: soon\n  features: [{name: f, type: bool}]\n",
			`invalid duration "soon"`},
	} {
		_, err := parseManifests("f.yaml", []byte(tc.in))
		var es manifestErrors
		if !errors.As(err, &es) || !strings.Contains(es.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.name, err, tc.want)
		}
	}
}

func TestEntityValues(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []any
	}{
		{"1,2", []any{int64(1), int64(2)}},
		{`042,"7",x`, []any{"042", "7", "x"}},
		{`"a,b",true`, []any{"a,b", true}},
	} {
		var got []any
		for _, s := range splitValues(tc.in) {
			got = append(got, entityValue(s))
		}
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: %#v, want %#v", tc.in, got, tc.want)
		}
	}
}
