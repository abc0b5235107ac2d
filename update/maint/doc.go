// Package maint authorises a technician's manual update on a terminal:
// the path a technician takes when the terminal cannot, or must not, wait
// for the server (power off, enter the master maintenance password
// 主控维护密码, register, heartbeat, reboot, sign in). It checks the
// technician's credential and says which one was used, for the audit
// event of the update that follows; it does not run the update.
//
// Two credentials open the maintenance menu:
//
//   - The master maintenance password, a [Password]. Only a salted argon2id
//     hash of it is kept, with its parameters, in one small file replaced
//     atomically and durably (package durable). There is no factory
//     default: the first use sets it, a change needs the old one, and
//     failed tries lock further ones out for a wait that doubles, a
//     lockout that survives power cuts and reboots.
//   - A technician token signed by the server with Ed25519, for one
//     terminal's serial, valid for hours, verified by a [TokenVerifier].
//     [IssueToken], for the server, uses only the standard library's
//     crypto; the package's only third-party import is the argon2 hash.
//
// Both are [Authorizer]s and return an [Authorization] naming the method
// and credential ("maintenance-password", "token:<technician>/<key ID>")
// and when it was accepted.
//
// A token is base64url(JSON claims) "." base64url(signature), unpadded.
// The claims are
//
//	{"kid":"tms-2025","tech":"t-042","serial":"SN123","iat":1735689600,"exp":1735704000,"nonce":"…"}
//
// with times in Unix seconds, and the signature is Ed25519 over the
// string "upkeep maintenance token v1\n" followed by the first part as it
// appears in the token. Unknown claims are refused, not ignored.
//
// All times come from time.Now: a terminal's clock should be set from the
// server (its heartbeat answers carry the server's time) before either
// credential is relied on.
package maint
