// Package config is the BFF's configuration: the YAML file (README
// "Configuration"), the BFF_* environment variables that set or override its
// fields, the rules each field and each combination of fields must meet,
// and the conversion into what the server runs with (server.Config, and
// within it the OIDC client's, the proxy routes', the cluster's and the
// session store's settings). It reads the secret, key and certificate files
// the configuration names, and it writes what `bff check` reports.
//
// Load is the entry point; Config.Check is `bff check`; RestartField says
// whether a reload (SIGHUP) needs a restart; UnknownEnv finds BFF_*
// variables that name no field.
//
// Every error starts with "config:" and never quotes a secret; a rule's
// error names the field that is wrong ("config: oidc.issuer: required").
//
// It does not parse the command line, set up logging, bind listeners or
// serve: package main does, with what Load returns. Only main imports it.
package config
