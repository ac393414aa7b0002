// Package session is stptunnel's pipeline: the steps of a dev session as plain functions over the JSON document
// (pkg/doc) and typed options, and Dev, their composition.
//
//	Detect       finds the deployed functions that reference the local resources   (functions, skipped)
//	OpenTunnels  opens one tunnel per resource the functions need                   (tunnels)
//	Patch        points the bound variables at the tunnels, journalled              (patches, skipped)
//	Restore      puts every variable back, compare-and-swap per key                 (restores)
//	Dev          all of the above, holds the session, follows moved tunnels, restores and closes at the end
//
// A step never parses flags, prints or exits: its inputs are the document, an Options struct the command line
// filled and validated once, and an Env (the AWS configuration loader, the state directory, the event sink); it
// enriches the document and reports what happens as Events, which the command line renders. Errors that mean
// "bad input, nothing was changed" are *InputError.
//
// This package is the tool's own: its API follows the command line and may change between versions. Programs
// that want the building blocks should use pkg/doc, pkg/connstr and pkg/bore, whose APIs are meant for them.
package session
