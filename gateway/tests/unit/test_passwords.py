from gateway import passwords


def test_a_hash_verifies_its_password_and_no_other() -> None:
    stored = passwords.hash_password("s3cret-pass")
    assert passwords.verify_password("s3cret-pass", stored)
    assert not passwords.verify_password("s3cret-pasS", stored)


def test_hashes_are_salted() -> None:
    assert passwords.hash_password("same") != passwords.hash_password("same")


def test_the_hash_names_its_algorithm_and_cost() -> None:
    scheme, log2_n, r, p, _salt, _key = passwords.hash_password("x").split("$")
    assert (scheme, int(log2_n), int(r), int(p)) == ("scrypt", passwords.LOG2_N, passwords.R, passwords.P)
    assert not passwords.needs_rehash(passwords.hash_password("x"))
    assert passwords.needs_rehash("scrypt$10$8$1$AAAA$AAAA")


def test_malformed_or_foreign_hashes_never_verify() -> None:
    for stored in ["", "plain", "bcrypt$2b$12$abc", "scrypt$x$8$1$AA==$AA==", "scrypt$15$8$1$!!$!!"]:
        assert not passwords.verify_password("anything", stored)


def test_the_dummy_hash_is_well_formed_and_matches_nothing() -> None:
    assert not passwords.verify_password("", passwords.DUMMY_HASH)
    assert not passwords.verify_password("password", passwords.DUMMY_HASH)
