// Package directory holds the rules of the Entra directory that sit above
// storage: client secrets, the development seed, and the validation of the
// objects users create.
package directory
