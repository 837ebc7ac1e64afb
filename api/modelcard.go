package api

import (
	"context"
	"mime"
	"net/http"
	"strconv"
	"strings"

	"github.com/kiln-ml/kiln/access"
	"github.com/kiln-ml/kiln/errdefs"
	"github.com/kiln-ml/kiln/lineage"
)

// ModelCards builds and edits model cards (a *lineage.Cards).
type ModelCards interface {
	Card(ctx context.Context, name string, version int64) (*lineage.ModelCard, error)
	EditCard(ctx context.Context, name string, version int64, edit lineage.CardEdit, actor string) (*lineage.ModelCard, error)
}

// Model card formats.
const (
	CardJSON     = "json"
	CardMarkdown = "markdown"
	CardHTML     = "html"
)

// cardHTMLPolicy lets a card's page use its inline style and nothing else.
const cardHTMLPolicy = "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

func (h *Handler) registerModelCards(mux Mux) {
	h.handle(mux, "GET", "/models/{model}/versions/{model_version}/card", h.getModelCard)
	h.handle(mux, "PUT", "/models/{model}/versions/{model_version}/card", h.putModelCard)
}

func (h *Handler) modelCards() (ModelCards, error) {
	if h.d.ModelCards == nil {
		return nil, errdefs.NotImplemented("This server does not serve model cards")
	}
	return h.d.ModelCards, nil
}

// cardVersion reads and checks the {model} and {model_version} path
// values.
func cardVersion(r *http.Request) (string, int64, error) {
	name := r.PathValue("model")
	if name == "" || len(name) > 256 || strings.ContainsRune(name, 0) {
		return "", 0, errdefs.Invalid("Invalid model name '%s'", clip(name))
	}
	v, err := strconv.ParseInt(r.PathValue("model_version"), 10, 64)
	if err != nil || v < 1 {
		return "", 0, errdefs.Invalid("Invalid model version '%s': want a number from 1", clip(r.PathValue("model_version")))
	}
	return name, v, nil
}

// storedVersion is cardVersion with the model's stored name in the
// request's workspace (access.StoredName).
func storedVersion(r *http.Request) (string, int64, error) {
	name, v, err := cardVersion(r)
	if err != nil {
		return "", 0, err
	}
	name, err = access.StoredName(r.Context(), access.ResourceModel, name)
	return name, v, err
}

// showCard shows a card of a model stored under a qualified name as its
// workspace names it.
func showCard(card *lineage.ModelCard) {
	stored := card.ModelDetails.Name
	shown := access.ShownName(stored)
	if shown == stored {
		return
	}
	card.ModelDetails.Name = shown
	for i, ref := range card.ModelDetails.References {
		card.ModelDetails.References[i].Reference = strings.ReplaceAll(ref.Reference, stored, shown)
	}
	for i, n := range card.Notes {
		card.Notes[i] = access.ShownText(n)
	}
}

// cardFormat picks the format: ?format=, else the first of text/markdown,
// text/html or application/json the Accept header names, else JSON.
func cardFormat(r *http.Request) (string, error) {
	if f := r.URL.Query().Get("format"); f != "" {
		switch strings.ToLower(f) {
		case "json":
			return CardJSON, nil
		case "markdown", "md":
			return CardMarkdown, nil
		case "html":
			return CardHTML, nil
		}
		return "", errdefs.Invalid("Invalid format '%s': want json, markdown or html", clip(f))
	}
	for _, part := range strings.Split(r.Header.Get("Accept"), ",") {
		mt, _, err := mime.ParseMediaType(strings.TrimSpace(part))
		if err != nil {
			continue
		}
		switch mt {
		case "text/markdown", "text/x-markdown":
			return CardMarkdown, nil
		case "text/html":
			return CardHTML, nil
		case "application/json":
			return CardJSON, nil
		}
	}
	return CardJSON, nil
}

// GET /models/{model}/versions/{model_version}/card?format=json|markdown|html:
// the version's model card.
func (h *Handler) getModelCard(w http.ResponseWriter, r *http.Request) error {
	mc, err := h.modelCards()
	if err != nil {
		return err
	}
	name, version, err := storedVersion(r)
	if err != nil {
		return err
	}
	format, err := cardFormat(r)
	if err != nil {
		return err
	}
	card, err := mc.Card(r.Context(), name, version)
	if err != nil {
		return err
	}
	return writeCard(w, card, format)
}

func writeCard(w http.ResponseWriter, card *lineage.ModelCard, format string) error {
	showCard(card)
	var (
		data []byte
		err  error
		ct   string
	)
	switch format {
	case CardMarkdown:
		data, err = card.Markdown()
		ct = "text/markdown; charset=utf-8"
	case CardHTML:
		data, err = card.HTML()
		ct = "text/html; charset=utf-8"
		w.Header().Set("Content-Security-Policy", cardHTMLPolicy)
	default:
		writeJSON(w, http.StatusOK, card)
		return nil
	}
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", ct)
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	w.Write(data)
	return nil
}

// PUT /models/{model}/versions/{model_version}/card: change the card's
// edited text (a lineage.CardEdit: absent fields are kept, empty ones
// cleared); answers the card as JSON, or in ?format=.
func (h *Handler) putModelCard(w http.ResponseWriter, r *http.Request) error {
	mc, err := h.modelCards()
	if err != nil {
		return err
	}
	name, version, err := storedVersion(r)
	if err != nil {
		return err
	}
	format, err := cardFormat(r)
	if err != nil {
		return err
	}
	who, err := actor(r)
	if err != nil {
		return err
	}
	var edit lineage.CardEdit
	if err := decodeJSON(w, r, DefaultMaxJSONBytes, &edit, false); err != nil {
		return err
	}
	card, err := mc.EditCard(r.Context(), name, version, edit, who)
	if err != nil {
		return err
	}
	return writeCard(w, card, format)
}
