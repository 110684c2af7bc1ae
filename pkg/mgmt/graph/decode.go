package graph

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"strings"

	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/directory"
)

// maxBody bounds request bodies.
const maxBody = 256 << 10

// decode reads a JSON body of at most maxBody bytes into v, refusing
// properties v does not have, as Graph does.
func decode(r *http.Request, v any) error {
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err != nil {
		return badRequest("BadRequest", "The request body could not be read.")
	}
	if len(body) > maxBody {
		return newError(http.StatusRequestEntityTooLarge, "Request_EntityTooLarge", fmt.Sprintf("The request body is larger than %d bytes.", maxBody))
	}
	if !directory.StorableJSON(body) {
		return badRequest("Request_BadRequest", "The request body must be UTF-8 text without NUL characters.")
	}
	invalid := badRequest("BadRequest", "Unable to read JSON request payload. Please ensure Content-Type header is set and payload is of valid JSON format.")
	var value json.RawMessage
	if err := json.NewDecoder(bytes.NewReader(body)).Decode(&value); err != nil {
		return invalid
	}
	if name, ok := unknownProperty(value, reflect.TypeOf(v)); ok {
		return badRequest("Request_BadRequest", "Property '%s' does not exist on type 'microsoft.graph'.", name)
	}
	if err := json.Unmarshal(value, v); err != nil {
		return invalid
	}
	return nil
}

// unknownProperty finds the first property of the JSON object data, at any
// depth, that type t does not have, by encoding/json's rules for names
// (tag, else field name, matched without regard to case). Reading the
// structure, not the decoder's message, keeps the answer exact.
func unknownProperty(data []byte, t reflect.Type) (string, bool) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Slice, reflect.Array:
		var items []json.RawMessage
		if json.Unmarshal(data, &items) != nil {
			return "", false
		}
		for _, item := range items {
			if name, ok := unknownProperty(item, t.Elem()); ok {
				return name, true
			}
		}
	case reflect.Struct:
		dec := json.NewDecoder(bytes.NewReader(data))
		if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
			return "", false
		}
		for dec.More() {
			tok, err := dec.Token()
			if err != nil {
				return "", false
			}
			key, _ := tok.(string)
			var value json.RawMessage
			if dec.Decode(&value) != nil {
				return "", false
			}
			f, ok := fieldFor(t, key)
			if !ok {
				return key, true
			}
			if name, ok := unknownProperty(value, f.Type); ok {
				return name, true
			}
		}
	}
	return "", false
}

// fieldFor finds the field of struct t that JSON property key fills.
func fieldFor(t reflect.Type, key string) (reflect.StructField, bool) {
	for _, f := range reflect.VisibleFields(t) {
		if !f.IsExported() || f.Anonymous {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" {
			continue
		}
		if name == "" {
			name = f.Name
		}
		if strings.EqualFold(name, key) {
			return f, true
		}
	}
	return reflect.StructField{}, false
}
