"""Data directives: inline values, .npy files, split placements, lane maps and addresses."""

import numpy as np
from asm_helpers import diagnostics

from lpu.assembler import assemble
from lpu.isa.program import words_to_tensor


def test_inline_f32_values_land_as_byte_planes_in_one_slice_per_plane():
    p = assemble(".chip mini\n.data x f32 (16) at mem.w3:0 mem.w2:0 mem.w1:0 mem.w0:0 = [\n"
                 "  1.5, 2, 3, 4, 5, 6, 7, 8,\n  9, 10, 11, 12, 13, 14, 15, 16]\n")
    seg = p.segment("x")
    assert seg.runs.tolist() == [[3, 0, 1], [2, 0, 1], [1, 0, 1], [0, 0, 1]]
    got = words_to_tensor(seg.data, "f32", (16,), 16)
    assert got.tolist() == [1.5] + [float(v) for v in range(2, 17)]


def test_words_are_split_evenly_then_by_explicit_counts():
    p = assemble(".chip mini\n.data t i32 (2, 16) at mem.e0:0 mem.e1:10 mem.e2:20\n"
                 ".data u i8 (4, 16) at mem.e3:0[1] mem.e3:8\n")
    from lpu.isa.chips import get_chip

    e = [get_chip("mini").queue(f"mem.e{i}").index for i in range(4)]  # slice numbers
    assert p.segment("t").runs.tolist() == [[e[0], 0, 3], [e[1], 10, 3], [e[2], 20, 2]]
    assert p.segment("u").runs.tolist() == [[e[3], 0, 1], [e[3], 8, 3]]


def test_npy_files_load_relative_to_the_source_without_pickle(tmp_path):
    w = np.arange(-8, 8, dtype=np.int8).reshape(1, 16)
    np.save(tmp_path / "w.npy", w)
    np.save(tmp_path / "m.npy", np.arange(16)[::-1].copy())
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    src = tmp_path / "k.s"
    src.write_text('.chip mini\n.data w i8 (1, 16) at mem.e0:0 = file "w.npy"\n'
                   '.map rev = file "m.npy"\n')
    p = assemble(src.read_text(), filename=str(src))
    assert np.array_equal(words_to_tensor(p.segment("w").data, "i8", (1, 16), 16), w)
    assert p.maps[0].tolist() == list(range(15, -1, -1))
    (d,) = diagnostics('.chip mini\n.data o i8 (1) at mem.e0:0 = file "obj.npy"\n',
                       base_dir=str(tmp_path))
    assert d[:2] == (2, 35) and "not a readable .npy file" in d[2]


def test_data_names_are_addresses_and_constants_compose():
    p = assemble(".chip mini\n.const N = 2 * (3 + 1) // 4\n.data x i8 (3, 16) at mem.e0:100\n"
                 ".queue mem.e0\n  read x + N, e0, -1\n")
    from lpu.isa.encoding import decode

    ins, vals = decode(int(p.queues["mem.e0"][0]))
    assert ins.mnemonic == "read" and vals["addr"] == 102 and vals["step"] == -1


def test_overlapping_data_is_reported_at_the_second_directive():
    got = diagnostics(".chip mini\n.data a i8 (4, 16) at mem.e0:0\n.data b i8 (16) at mem.e0:2\n")
    assert got[0][:2] == (3, 7) and "overlap" in got[0][2]


def test_out_of_range_integer_data_is_an_error():
    (d,) = diagnostics(".chip mini\n.data a i8 (2) at mem.e0:0 = [1, 300]\n")
    assert d[0] == 2 and "out of range" in d[2]


def test_a_map_with_the_wrong_length_is_an_error():
    (d,) = diagnostics(".chip mini\n.map m = [0, 1, 2]\n")
    assert d[:2] == (2, 10) and "16 on mini" in d[2]


def test_float_constants_and_raw_bits_in_imm_operands():
    p = assemble(".chip mini\n.queue vxm.0\n  addi.f32 e0, -2.5, e4\n  addi.f32 e0, bits(0x7fc00001), "
                 "e4\n  muli.i32 e0, -1, e4\n")
    from lpu.isa.encoding import decode

    imms = [decode(int(w))[1]["imm"] for w in p.queues["vxm.0"]]
    assert imms == [0xC0200000, 0x7FC00001, 0xFFFFFFFF]
