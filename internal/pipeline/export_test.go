package pipeline

// FamilyWinner exposes familyWinner to the external tests.
var FamilyWinner = familyWinner
