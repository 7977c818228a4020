from kit import protogen


def test_generated_code_matches_the_protos(capsys):
    assert protogen.main(["--check", "gen"]) == 0, capsys.readouterr().err
