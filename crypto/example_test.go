package crypto_test

import (
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/bff-project/bff/crypto"
	"github.com/bff-project/bff/keys"
)

func Example() {
	// In production the secrets come from config (keys.ParseSecrets).
	ring, err := keys.New(keys.Config{
		Secrets: [][]byte{[]byte("an example master secret, 32+ bytes long")},
		Window:  8 * time.Hour, // the session lifetime
	})
	if err != nil {
		log.Fatal(err)
	}
	sealer, err := crypto.NewSealer(crypto.Config{Ring: ring})
	if err != nil {
		log.Fatal(err)
	}
	chunker, err := crypto.NewChunker(crypto.ChunkConfig{Name: "__Host-Http-bff"})
	if err != nil {
		log.Fatal(err)
	}

	// Seal the session and write it as cookies on the response.
	sealed, err := sealer.Seal(crypto.Session, []byte(`{"sub":"alice"}`))
	if err != nil {
		log.Fatal(err)
	}
	w := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodGet, "https://app.example.com/", nil)
	if err := chunker.Write(w.Header(), req, sealed); err != nil {
		log.Fatal(err)
	}

	// The browser sends the cookies back on its next request.
	next := httptest.NewRequest(http.MethodGet, "https://app.example.com/api/", nil)
	for _, c := range w.Result().Cookies() {
		next.AddCookie(c)
	}
	value, err := chunker.Read(next)
	if err != nil {
		log.Fatal(err)
	}
	plaintext, stale, err := sealer.Open(crypto.Session, value)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(string(plaintext), stale)

	// A session value never opens as a login value.
	_, _, err = sealer.Open(crypto.Login, value)
	fmt.Println(err)

	fmt.Println(strings.Join(chunker.Names(next), ","))
	// Output:
	// {"sub":"alice"} false
	// crypto: invalid sealed value
	// __Host-Http-bff.0
}
