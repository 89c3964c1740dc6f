pub mod inspect;
pub mod model;
pub mod reserved;
pub mod sim;
pub mod train;
