//! The straight-through sign and the OneBit linear in training form, as the
//! trainer uses them (`onebit_model::sign_ste`, `OneBitTrainLinear`): forward
//! values, the STE gradient against finite differences of its surrogate
//! tanh(w) + 0.001·w, and the gradients of g, h and x against finite
//! differences of the layer itself (where it is differentiable).

use candle_core::{Device, Tensor, Var};
use onebit_model::{sign_ste, OneBitTrainLinear};
use onebit_trainer::data::SplitMix64;

fn vec_of(t: &Tensor) -> Vec<f32> {
    t.flatten_all().unwrap().to_vec1().unwrap()
}

#[test]
fn sign_forward_and_straight_through_gradient() {
    let w = [-30.0f32, -2.0, -0.5, -1e-6, -0.0, 0.0, 1e-6, 0.3, 1.0, 4.0, 30.0];
    let var = Var::from_slice(&w, w.len(), &Device::Cpu).unwrap();
    let s = sign_ste(var.as_tensor()).unwrap();
    let expect_sign: Vec<f32> = w.iter().map(|&x| if x < 0.0 { -1.0 } else { 1.0 }).collect();
    assert_eq!(vec_of(&s), expect_sign, "sign(0) and sign(-0) must be +1 like the packer");
    // L = Σ c_i · sign(w_i): dL/dw_i = c_i (1.001 − tanh² w_i).
    let c: Vec<f32> = (0..w.len()).map(|i| 0.5 + i as f32 * 0.25).collect();
    let ct = Tensor::from_slice(&c, w.len(), &Device::Cpu).unwrap();
    let grads = (s * &ct).unwrap().sum_all().unwrap().backward().unwrap();
    let g = vec_of(grads.get(var.as_tensor()).unwrap());
    for i in 0..w.len() {
        // Finite differences of the surrogate f(w) = tanh(w) + 0.001·w, whose derivative the STE uses.
        let f = |x: f64| x.tanh() + 0.001 * x;
        let h = 1e-4;
        let fd = c[i] as f64 * (f(w[i] as f64 + h) - f(w[i] as f64 - h)) / (2.0 * h);
        assert!((g[i] as f64 - fd).abs() < 1e-5 * c[i] as f64 + 1e-7, "w = {}: STE grad {} vs {fd}", w[i], g[i]);
    }
    // Saturation: far from 0 the gradient is the 0.001 floor, never 0.
    assert!((g[0] / c[0] - 0.001).abs() < 1e-6 && (g[10] / c[10] - 0.001).abs() < 1e-6);
}

#[test]
fn onebit_linear_gradients_match_finite_differences() {
    let (m, k, n) = (3usize, 7usize, 5usize);
    let mut rng = SplitMix64::new(42);
    let mut rand = |len: usize, lo: f32, hi: f32| -> Vec<f32> { (0..len).map(|_| lo + (hi - lo) * rng.unit_f64() as f32).collect() };
    let latent = Tensor::from_vec(rand(n * k, -0.02, 0.02), (n, k), &Device::Cpu).unwrap();
    let x0 = rand(m * k, -1.0, 1.0);
    let g0 = rand(k, 0.5, 1.5);
    let h0 = rand(n, 0.2, 1.2);
    let coef = Tensor::from_vec(rand(m * n, -1.0, 1.0), (m, n), &Device::Cpu).unwrap();
    // Scalar objective: Σ coef ⊙ layer(x) (LayerNorm makes a plain sum constant).
    let objective = |x: &[f32], g: &[f32], h: &[f32]| -> f64 {
        let l = OneBitTrainLinear {
            latent: latent.clone(),
            g: Tensor::from_slice(g, k, &Device::Cpu).unwrap(),
            h: Tensor::from_slice(h, n, &Device::Cpu).unwrap(),
            layer_norm_eps: 1e-5,
        };
        let y = l.forward(&Tensor::from_slice(x, (m, k), &Device::Cpu).unwrap()).unwrap();
        (y * &coef).unwrap().sum_all().unwrap().to_scalar::<f32>().unwrap() as f64
    };
    let (xv, gv, hv) = (
        Var::from_slice(&x0, (m, k), &Device::Cpu).unwrap(),
        Var::from_slice(&g0, k, &Device::Cpu).unwrap(),
        Var::from_slice(&h0, n, &Device::Cpu).unwrap(),
    );
    let l = OneBitTrainLinear { latent: latent.clone(), g: gv.as_tensor().clone(), h: hv.as_tensor().clone(), layer_norm_eps: 1e-5 };
    let y = l.forward(xv.as_tensor()).unwrap();
    let grads = (y * &coef).unwrap().sum_all().unwrap().backward().unwrap();
    let analytic = [vec_of(grads.get(xv.as_tensor()).unwrap()), vec_of(grads.get(gv.as_tensor()).unwrap()), vec_of(grads.get(hv.as_tensor()).unwrap())];
    let h = 1e-2f32;
    for (which, base) in [&x0, &g0, &h0].into_iter().enumerate() {
        for i in 0..base.len() {
            let (mut up, mut dn) = (base.clone(), base.clone());
            up[i] += h;
            dn[i] -= h;
            let eval = |v: &[f32]| match which {
                0 => objective(v, &g0, &h0),
                1 => objective(&x0, v, &h0),
                _ => objective(&x0, &g0, v),
            };
            let fd = (eval(&up) - eval(&dn)) / (2.0 * h as f64);
            let a = analytic[which][i] as f64;
            assert!((a - fd).abs() < 2e-2 * fd.abs().max(0.1), "parameter {which} index {i}: autograd {a} vs finite difference {fd}");
        }
    }
    // The latent weight gets the STE gradient (non-zero although sign is flat).
    let l2 = OneBitTrainLinear {
        latent: Var::from_tensor(&latent).unwrap().as_tensor().clone(),
        g: Tensor::from_slice(&g0, k, &Device::Cpu).unwrap(),
        h: Tensor::from_slice(&h0, n, &Device::Cpu).unwrap(),
        layer_norm_eps: 1e-5,
    };
    let y = l2.forward(&Tensor::from_slice(&x0, (m, k), &Device::Cpu).unwrap()).unwrap();
    let grads = (y * &coef).unwrap().sum_all().unwrap().backward().unwrap();
    let gl = vec_of(grads.get(&l2.latent).unwrap());
    assert!(gl.iter().any(|v| v.abs() > 1e-4));
}
