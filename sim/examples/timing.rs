//! Print a cycle-by-cycle diagram of the stream handshakes for a tiny 2×2
//! accelerator (4-bit weight beats, so 1 beat per tile; 3 weight banks;
//! whole-row output beats) running a K = 4, N = 4 layer on M = 2 tokens:
//! two N tiles of two K tiles each, TILE TILE DRAIN TILE TILE DRAIN, the
//! diagram in docs/hardware.md:
//! `cargo run --release -p onebit-sim --example timing`

use ndarray::Array2;
use onebit_core::synth::{random_layer, SplitMix64};
use onebit_core::ArrayConfig;
use onebit_core::ports::DevicePorts;
use onebit_core::wire::{words_for, Command, Opcode};
use onebit_driver::Program;

const T2X2: ArrayConfig = ArrayConfig {
    rows: 2,
    cols: 2,
    act_bits: 8,
    g_bits: 8,
    lane_bits: 12,
    h_bits: 16,
    out_bits: 16,
    weight_beat_bits: 4,
    max_k: 16,
    acc_depth: 2,
    weight_banks: 3,
    out_words_per_beat: 2,
};
onebit_hdl::accelerator_for!(t2x2, super::T2X2);

fn main() -> anyhow::Result<()> {
    let cfg = T2X2;
    let mut rng = SplitMix64(1);
    let layer = random_layer(&mut rng, 4, 4).quantize(&cfg)?;
    let x = Array2::from_shape_fn((2, 4), |_| rng.range_i64(-127, 127) as i32);
    let p = Program::compile(&cfg, &layer, x.view())?;
    let mut dev = t2x2::build()?;
    let (mut c, mut w, mut s, mut xi, mut words) = (0, 0, 0, 0, 0);
    let mut rows: Vec<(&str, String)> = ["cmd", "s", "w", "x", "o"]
        .iter()
        .map(|n| (*n, String::new()))
        .collect();
    let mut cycle = 0;
    let zero_s = vec![0u32; words_for(cfg.scale_beat_bits())];
    let mut beats = vec![];
    while words < p.output_beats && cycle < 200 {
        dev.set_reset(false);
        dev.set_cmd(c < p.commands.len(), *p.commands.get(c).unwrap_or(&0));
        dev.set_scale(s < p.scale_beats.len(), p.scale_beats.get(s).map_or(&zero_s[..], |v| v));
        dev.set_weight(
            w < p.weight_beats.len(),
            p.weight_beats.get(w).map_or(&[0u32][..], |v| v),
        );
        dev.set_activation(
            xi < p.activation_beats.len(),
            p.activation_beats.get(xi).map_or(&[0u32][..], |v| v),
        );
        dev.set_out_ready(true);
        dev.eval();
        let mark = |fire: bool, label: String| if fire { format!("{label:>3}") } else { "  .".into() };
        let cmd_fire = c < p.commands.len() && dev.cmd_ready();
        let op = p.commands.get(c).map(|&v| match Command::decode(v).map(|d| d.opcode) {
            Ok(Opcode::Tile) => "T",
            Ok(Opcode::Drain) => "D",
            Err(_) => "?",
        });
        rows[0].1 += &mark(cmd_fire, op.unwrap_or("").to_string());
        let s_fire = s < p.scale_beats.len() && dev.scale_ready();
        rows[1].1 += &mark(s_fire, format!("s{s}"));
        let w_fire = w < p.weight_beats.len() && dev.weight_ready();
        rows[2].1 += &mark(w_fire, format!("w{w}"));
        let x_fire = xi < p.activation_beats.len() && dev.activation_ready();
        rows[3].1 += &mark(x_fire, format!("x{xi}"));
        let o_fire = dev.out_valid();
        if o_fire {
            beats.push(dev.out_data());
        }
        rows[4].1 += &mark(o_fire, format!("o{words}"));
        c += cmd_fire as usize;
        s += s_fire as usize;
        w += w_fire as usize;
        xi += x_fire as usize;
        words += o_fire as usize;
        dev.tick();
        cycle += 1;
    }
    let header: String = (0..cycle).map(|i| format!("{i:>3}")).collect();
    let want = onebit_core::reference::integer_forward(&cfg, &layer, x.view())?;
    println!("cycle{header}");
    for (name, line) in rows {
        println!("{name:<5}{line}");
    }
    anyhow::ensure!(p.assemble(&beats)? == want, "hardware and reference differ");
    println!("({words} output beats, equal to the reference)");
    Ok(())
}
