// Package thirdparty holds no code. Its directory holds copies of other
// modules that securetextd carries with patches of its own until their
// authors release them, each a module of its own that the root go.mod
// replaces (go-smtp: see go-smtp/PATCHES.md). Its test proves that each
// copy is the release it names plus the patches in docs/, nothing else.
package thirdparty
